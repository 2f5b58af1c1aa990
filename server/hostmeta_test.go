package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/server/servertest"
)

func TestHostMeta(t *testing.T) {
	e := servertest.Start(t, nil)
	base := strings.TrimSuffix(e.BOSH, "/http-bind")
	resp, err := http.Get(base + "/.well-known/host-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	var jrd struct {
		Links []struct{ Rel, Href string }
	}
	err = json.NewDecoder(resp.Body).Decode(&jrd)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"urn:xmpp:alt-connections:websocket": e.WS,
		"urn:xmpp:alt-connections:xbosh":     e.BOSH,
	}
	for _, l := range jrd.Links {
		if want[l.Rel] == l.Href {
			delete(want, l.Rel)
		}
	}
	if len(want) != 0 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("host-meta.json links %+v, missing %v", jrd.Links, want)
	}
	resp, err = http.Get(base + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	xrd, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(xrd), "<Link rel='urn:xmpp:alt-connections:websocket' href='"+e.WS+"'/>") ||
		!strings.Contains(string(xrd), "<Link rel='urn:xmpp:alt-connections:xbosh' href='"+e.BOSH+"'/>") ||
		resp.Header.Get("Content-Type") != "application/xrd+xml" {
		t.Fatalf("host-meta: %s", xrd)
	}
}
