package upload_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/upload"
	"github.com/xmppd/xmppd/wire"
)

// env is a running server with upload configured by edit, and a logged-in
// alice.
type env struct {
	*servertest.Env
	t     testing.TB
	alice *client.Client
	cfg   *upload.Config
	ids   atomic.Int64
}

func start(t testing.TB, edit func(*upload.Config)) *env {
	t.Helper()
	var uc *upload.Config
	e := servertest.Start(t, func(c *conf.Config) {
		uc = c.Module("upload").(*upload.Config)
		uc.RequestsPerMinute = 0
		if edit != nil {
			edit(uc)
		}
	})
	e.AddUser("alice", "pw-alice-1")
	return &env{Env: e, t: t, alice: e.Login("alice", "pw-alice-1", "r"), cfg: uc}
}

func (e *env) service() string { return "upload." + e.Domain }

// slot is a granted slot.
type slot struct {
	put, get, auth string
}

// request asks c for a slot and returns the answer stanza.
func (e *env) request(c *client.Client, to, name string, size int64, ctype string) *wire.Stanza {
	e.t.Helper()
	id := fmt.Sprintf("u%d", e.ids.Add(1))
	raw := "<iq type='get' id='" + id + "' to='" + to + "'><request xmlns='urn:xmpp:http:upload:0' filename='" +
		string(wire.AppendEscapedAttr(nil, name)) + "' size='" + strconv.FormatInt(size, 10) + "'"
	if ctype != "" {
		raw += " content-type='" + ctype + "'"
	}
	raw += "/></iq>"
	st, err := c.IQ(10*time.Second, raw, id)
	if err != nil {
		e.t.Fatalf("slot request: %v", err)
	}
	return st
}

func parseSlot(t testing.TB, st *wire.Stanza) slot {
	t.Helper()
	if st.Type != "result" {
		t.Fatalf("slot request refused: %s", st.Raw)
	}
	var v struct {
		Slot struct {
			Put struct {
				URL     string `xml:"url,attr"`
				Headers []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:",chardata"`
				} `xml:"header"`
			} `xml:"put"`
			Get struct {
				URL string `xml:"url,attr"`
			} `xml:"get"`
		} `xml:"urn:xmpp:http:upload:0 slot"`
	}
	if err := st.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", st.Raw, err)
	}
	s := slot{put: v.Slot.Put.URL, get: v.Slot.Get.URL}
	for _, h := range v.Slot.Put.Headers {
		if h.Name != "Authorization" {
			t.Fatalf("unexpected header %q", h.Name)
		}
		s.auth = h.Value
	}
	if s.put == "" || s.get == "" || s.auth == "" {
		t.Fatalf("incomplete slot: %s", st.Raw)
	}
	return s
}

// slot requests a slot for alice and checks it is granted.
func (e *env) slot(name string, size int64, ctype string) slot {
	e.t.Helper()
	return parseSlot(e.t, e.request(e.alice, e.service(), name, size, ctype))
}

var httpc = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 200}}

// do runs one HTTP request; body may be nil. It returns the response with
// its body read.
func do(t testing.TB, method, u string, body io.Reader, size int64, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, u, err)
	}
	return resp, b
}

func (s slot) upload(t testing.TB, data []byte, ctype string) *http.Response {
	t.Helper()
	hdr := map[string]string{"Authorization": s.auth}
	if ctype != "" {
		hdr["Content-Type"] = ctype
	}
	resp, _ := do(t, http.MethodPut, s.put, bytes.NewReader(data), int64(len(data)), hdr)
	return resp
}

func wantStatus(t testing.TB, what string, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("%s: status %d, want %d", what, resp.StatusCode, code)
	}
}

func TestDisco(t *testing.T) {
	e := start(t, func(c *upload.Config) { c.MaxFileSize = 5 * conf.MiB })
	st, err := e.alice.IQ(5*time.Second, "<iq type='get' id='i1' to='"+e.Domain+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "i1")
	if err != nil || !client.Contains(st, "jid='upload.localhost'") {
		t.Fatalf("disco#items of the server: %v %s", err, st.Raw)
	}
	st, err = e.alice.IQ(5*time.Second, "<iq type='get' id='i2' to='upload.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "i2")
	if err != nil || st.Type != "result" {
		t.Fatalf("disco#info of the service: %v %v", err, st)
	}
	for _, want := range []string{
		"<identity category='store' type='file'",
		"<feature var='urn:xmpp:http:upload:0'/>",
		"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>",
		"<field var='max-file-size'><value>5242880</value></field>",
	} {
		if !client.Contains(st, want) {
			t.Errorf("disco#info lacks %s: %s", want, st.Raw)
		}
	}
	st, _ = e.alice.IQ(5*time.Second, "<iq type='get' id='i3' to='upload.localhost'><query xmlns='jabber:iq:version'/></iq>", "i3")
	if st.Type != "error" || !client.Contains(st, "service-unavailable") {
		t.Fatalf("unknown query: %s", st.Raw)
	}
}

func TestRoundTrip(t *testing.T) {
	e := start(t, nil)
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	s := e.slot("très cool.jpg", int64(len(data)), "image/jpeg")
	if s.put != s.get || !strings.Contains(s.get, "/upload/") || !strings.HasSuffix(s.get, "/tr%C3%A8s%20cool.jpg") {
		t.Fatalf("URLs: put %s get %s", s.put, s.get)
	}
	if !strings.HasPrefix(s.auth, "Bearer ") {
		t.Fatalf("authorization %q", s.auth)
	}
	// Not served before the upload.
	resp, _ := do(t, "GET", s.get, nil, 0, nil)
	wantStatus(t, "GET of a pending slot", resp, 404)

	wantStatus(t, "PUT", s.upload(t, data, "image/jpeg"), http.StatusCreated)

	resp, body := do(t, "GET", s.get, nil, 0, nil)
	wantStatus(t, "GET", resp, 200)
	if !bytes.Equal(body, data) {
		t.Fatalf("GET returned %d different bytes", len(body))
	}
	h := resp.Header
	checks := map[string]string{
		"Content-Type":                "image/jpeg",
		"Content-Length":              strconv.Itoa(len(data)),
		"X-Content-Type-Options":      "nosniff",
		"Access-Control-Allow-Origin": "*",
		"Accept-Ranges":               "bytes",
	}
	for k, v := range checks {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") {
		t.Errorf("CSP %q", csp)
	}
	if d := h.Get("Content-Disposition"); !strings.HasPrefix(d, "inline") {
		t.Errorf("an image should be inline: %q", d)
	}
	etag, lm := h.Get("ETag"), h.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("ETag %q Last-Modified %q", etag, lm)
	}

	// HEAD: the headers, no body.
	resp, body = do(t, "HEAD", s.get, nil, 0, nil)
	wantStatus(t, "HEAD", resp, 200)
	if len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) || resp.Header.Get("ETag") != etag {
		t.Fatalf("HEAD: %d body bytes, headers %v", len(body), resp.Header)
	}

	// Validators.
	resp, body = do(t, "GET", s.get, nil, 0, map[string]string{"If-None-Match": etag})
	wantStatus(t, "If-None-Match", resp, http.StatusNotModified)
	if len(body) != 0 {
		t.Fatal("304 with a body")
	}
	resp, _ = do(t, "GET", s.get, nil, 0, map[string]string{"If-None-Match": `"other"`})
	wantStatus(t, "If-None-Match with another tag", resp, 200)
	resp, _ = do(t, "GET", s.get, nil, 0, map[string]string{"If-Modified-Since": lm})
	wantStatus(t, "If-Modified-Since", resp, http.StatusNotModified)

	// One range.
	resp, body = do(t, "GET", s.get, nil, 0, map[string]string{"Range": "bytes=100-1123"})
	wantStatus(t, "Range", resp, http.StatusPartialContent)
	if !bytes.Equal(body, data[100:1124]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-1123/%d", len(data)) {
		t.Fatalf("Range: %d bytes, Content-Range %q", len(body), resp.Header.Get("Content-Range"))
	}
	// Suffix range.
	resp, body = do(t, "GET", s.get, nil, 0, map[string]string{"Range": "bytes=-10"})
	wantStatus(t, "suffix Range", resp, http.StatusPartialContent)
	if !bytes.Equal(body, data[len(data)-10:]) {
		t.Fatalf("suffix range: %q", body)
	}
	// Several ranges: multipart/byteranges.
	resp, body = do(t, "GET", s.get, nil, 0, map[string]string{"Range": "bytes=0-9,5000-5099,65530-"})
	wantStatus(t, "multiple ranges", resp, http.StatusPartialContent)
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("multi-range Content-Type %q", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for _, want := range [][2]int{{0, 10}, {5000, 5100}, {65530, 65536}} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(p)
		if !bytes.Equal(got, data[want[0]:want[1]]) || p.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("part %v: %q (%s)", want, got, p.Header.Get("Content-Type"))
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("more parts: %v", err)
	}
	// Unsatisfiable.
	resp, _ = do(t, "GET", s.get, nil, 0, map[string]string{"Range": "bytes=70000-"})
	wantStatus(t, "unsatisfiable Range", resp, http.StatusRequestedRangeNotSatisfiable)
	// If-Range with the current ETag gives the range; with another, all.
	resp, body = do(t, "GET", s.get, nil, 0, map[string]string{"Range": "bytes=0-0", "If-Range": etag})
	wantStatus(t, "If-Range", resp, http.StatusPartialContent)
	resp, _ = do(t, "GET", s.get, nil, 0, map[string]string{"Range": "bytes=0-0", "If-Range": `"x"`})
	wantStatus(t, "If-Range mismatch", resp, 200)
	_ = body
}

func TestDisposition(t *testing.T) {
	e := start(t, nil)
	for _, c := range []struct {
		name, ctype, served, disp string
	}{
		{"a.txt", "text/plain; charset=utf-8", "text/plain; charset=utf-8", "attachment"},
		{"a.html", "text/html", "text/html", "attachment"},
		{"a.svg", "image/svg+xml", "image/svg+xml", "attachment"},
		{"a.png", "image/png", "image/png", "inline"},
		{"a.ogg", "audio/ogg", "audio/ogg", "inline"},
		{"a.mp4", "video/mp4", "video/mp4", "inline"},
		{"a.bin", "", "application/octet-stream", "attachment"},
	} {
		data := []byte("<html><script>alert(1)</script></html>")
		s := e.slot(c.name, int64(len(data)), c.ctype)
		wantStatus(t, c.name, s.upload(t, data, c.ctype), 201)
		resp, _ := do(t, "GET", s.get, nil, 0, nil)
		wantStatus(t, c.name, resp, 200)
		d := resp.Header.Get("Content-Disposition")
		kind, params, _ := mime.ParseMediaType(d)
		if resp.Header.Get("Content-Type") != c.served || kind != c.disp || params["filename"] != c.name {
			t.Errorf("%s: Content-Type %q Content-Disposition %q", c.name, resp.Header.Get("Content-Type"), d)
		}
	}
	// A slot without a type takes the PUT's, if allowed.
	data := []byte("GIF89a")
	s := e.slot("x.gif", int64(len(data)), "")
	wantStatus(t, "PUT with a type for an untyped slot", s.upload(t, data, "image/gif"), 201)
	resp, _ := do(t, "GET", s.get, nil, 0, nil)
	if resp.Header.Get("Content-Type") != "image/gif" {
		t.Errorf("untyped slot: served as %q", resp.Header.Get("Content-Type"))
	}
}

func TestCORS(t *testing.T) {
	e := start(t, nil)
	data := []byte("hello")
	s := e.slot("a.txt", 5, "text/plain")
	req, _ := http.NewRequest("OPTIONS", s.put, nil)
	req.Header.Set("Origin", "https://web.example")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("preflight: %d", resp.StatusCode)
	}
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("Allow-Origin %q", h.Get("Access-Control-Allow-Origin"))
	}
	for _, m := range []string{"GET", "HEAD", "PUT", "OPTIONS"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) {
			t.Errorf("Allow-Methods %q lacks %s", h.Get("Access-Control-Allow-Methods"), m)
		}
	}
	for _, hd := range []string{"content-type", "authorization"} {
		if !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), hd) {
			t.Errorf("Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), hd)
		}
	}
	resp, _ = do(t, "PUT", s.put, bytes.NewReader(data), 5, map[string]string{"Authorization": s.auth, "Content-Type": "text/plain", "Origin": "https://web.example"})
	wantStatus(t, "PUT", resp, 201)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("PUT without CORS headers")
	}
	resp, _ = do(t, "GET", s.get, nil, 0, map[string]string{"Origin": "https://web.example"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Content-Range") {
		t.Errorf("GET CORS headers: %v", resp.Header)
	}
}

// errorOf returns the stanza error condition and text of an answer.
func errorOf(t *testing.T, st *wire.Stanza) (typ, cond string) {
	t.Helper()
	if st.Type != "error" {
		t.Fatalf("want an error, got %s", st.Raw)
	}
	var v struct {
		Err struct {
			Type  string `xml:"type,attr"`
			Inner []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	for _, in := range v.Err.Inner {
		if in.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && in.XMLName.Local != "text" {
			cond = in.XMLName.Local
		}
	}
	return v.Err.Type, cond
}

func wantError(t *testing.T, what string, st *wire.Stanza, typ, cond string, contains ...string) {
	t.Helper()
	gt, gc := errorOf(t, st)
	if gt != typ || gc != cond {
		t.Fatalf("%s: error %s/%s, want %s/%s: %s", what, gt, gc, typ, cond, st.Raw)
	}
	for _, c := range contains {
		if !client.Contains(st, c) {
			t.Fatalf("%s: lacks %s: %s", what, c, st.Raw)
		}
	}
}

func retryStamp(t *testing.T, st *wire.Stanza) time.Time {
	t.Helper()
	var v struct {
		Err struct {
			Retry struct {
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:http:upload:0 retry"`
		} `xml:"error"`
	}
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse(time.RFC3339, v.Err.Retry.Stamp)
	if err != nil {
		t.Fatalf("retry stamp %q: %v: %s", v.Err.Retry.Stamp, err, st.Raw)
	}
	return ts
}

func TestRefusals(t *testing.T) {
	e := start(t, func(c *upload.Config) {
		c.MaxFileSize = 1000
		c.Deny = []string{"text/html"}
	})
	svc := e.service()

	st := e.request(e.alice, svc, "big.bin", 1001, "application/octet-stream")
	wantError(t, "too large", st, "modify", "not-acceptable",
		"<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>1000</max-file-size></file-too-large>",
		"<request xmlns='urn:xmpp:http:upload:0' filename='big.bin' size='1001'")

	st = e.request(e.alice, svc, "a.html", 10, "text/html; charset=utf-8")
	wantError(t, "denied type", st, "modify", "not-acceptable")
	if client.Contains(st, "file-too-large") {
		t.Fatal("a denied type is not too large")
	}
	st = e.request(e.alice, svc, "a.html", 10, "TEXT/HTML")
	wantError(t, "denied type, uppercase", st, "modify", "not-acceptable")

	for _, bad := range []string{
		"<request xmlns='urn:xmpp:http:upload:0' size='10'/>",
		"<request xmlns='urn:xmpp:http:upload:0' filename='a' size='-1'/>",
		"<request xmlns='urn:xmpp:http:upload:0' filename='a' size='ten'/>",
		"<request xmlns='urn:xmpp:http:upload:0' filename='..' size='1'/>",
		"<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1' content-type='not a type'/>",
	} {
		st, err := e.alice.IQ(5*time.Second, "<iq type='get' id='bad' to='"+svc+"'>"+bad+"</iq>", "bad")
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, bad, st, "modify", "bad-request")
	}
	st, _ = e.alice.IQ(5*time.Second, "<iq type='set' id='set' to='"+svc+"'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/></iq>", "set")
	wantError(t, "iq set", st, "cancel", "service-unavailable")
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []struct {
		edit func(*upload.Config)
		ok   bool
	}{
		{func(*upload.Config) {}, true},
		{func(c *upload.Config) { c.Allow = []string{"image/*", "video/mp4", "*/*"} }, true},
		{func(c *upload.Config) { c.Deny = []string{"application/x-*"} }, false},
		{func(c *upload.Config) { c.Deny = []string{"html"} }, false},
		{func(c *upload.Config) { c.BaseURL = "https://files.example.org/xmpp/" }, true},
		{func(c *upload.Config) { c.BaseURL = "ftp://files.example.org" }, false},
		{func(c *upload.Config) { c.BaseURL = "https://files.example.org/?a=b" }, false},
		{func(c *upload.Config) { c.BaseURL = "/relative" }, false},
	} {
		cfg := conf.Default(t.TempDir())
		c.edit(cfg.Module("upload").(*upload.Config))
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", cfg.Module("upload"), err)
		}
	}
	// The XML spelling.
	x := `<xmppd><modules><upload max-file-size="10MB" base-url="https://x.example"><allow><type name="image/*"/></allow><deny><type name="image/svg+xml"/></deny></upload></modules></xmppd>`
	cfg, err := conf.Parse(strings.NewReader(x), "t.xml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	uc := cfg.Module("upload").(*upload.Config)
	if uc.MaxFileSize != 10e6 || len(uc.Allow) != 1 || uc.Deny[0] != "image/svg+xml" || uc.BaseURL != "https://x.example" {
		t.Fatalf("%+v", uc)
	}
}

func TestAllowList(t *testing.T) {
	e := start(t, func(c *upload.Config) { c.Allow = []string{"image/*", "audio/ogg"} })
	e.slot("a.png", 1, "image/png")
	e.slot("a.ogg", 1, "audio/ogg")
	wantError(t, "not allowed", e.request(e.alice, e.service(), "a.pdf", 1, "application/pdf"), "modify", "not-acceptable")
	wantError(t, "not allowed", e.request(e.alice, e.service(), "a.mp3", 1, "audio/mpeg"), "modify", "not-acceptable")
	// An untyped slot cannot smuggle a type the lists refuse.
	s := e.slot("a", 3, "")
	wantStatus(t, "PUT of a refused type", s.upload(t, []byte("pdf"), "application/pdf"), http.StatusUnsupportedMediaType)
}

func TestRateLimit(t *testing.T) {
	e := start(t, func(c *upload.Config) { c.RequestsPerMinute = 3 })
	for i := 0; i < 3; i++ {
		e.slot("a.txt", 1, "text/plain")
	}
	before := time.Now()
	st := e.request(e.alice, e.service(), "a.txt", 1, "text/plain")
	wantError(t, "rate", st, "wait", "resource-constraint", "<retry xmlns='urn:xmpp:http:upload:0' stamp='")
	// One token every 20 s.
	if r := retryStamp(t, st); r.Before(before.Add(15*time.Second)) || r.After(before.Add(22*time.Second)) {
		t.Fatalf("retry at %v, asked at %v", r, before)
	}
	// Another user has their own budget.
	e.AddUser("bob", "pw-bob-12")
	bob := e.Login("bob", "pw-bob-12", "r")
	parseSlot(t, e.request(bob, e.service(), "b.txt", 1, "text/plain"))
}

func TestQuota(t *testing.T) {
	e := start(t, func(c *upload.Config) {
		c.MaxFileSize = 600
		c.Quota = 1000
		c.ExpireAfter = time.Hour
	})
	data := bytes.Repeat([]byte{'q'}, 600)
	s := e.slot("a.bin", 600, "")
	wantStatus(t, "PUT", s.upload(t, data, ""), 201)
	// A pending slot counts too.
	e.slot("b.bin", 300, "")
	st := e.request(e.alice, e.service(), "c.bin", 200, "")
	wantError(t, "quota", st, "wait", "resource-constraint", "Quota")
	// Enough is freed when the pending slot's URL expires.
	if r := retryStamp(t, st); r.Before(time.Now().Add(e.cfg.PutExpiry-time.Minute)) || r.After(time.Now().Add(e.cfg.PutExpiry+time.Minute)) {
		t.Fatalf("retry %v", r)
	}
	st = e.request(e.alice, e.service(), "d.bin", 500, "")
	wantError(t, "quota", st, "wait", "resource-constraint")
	// Only when the stored file expires.
	if r := retryStamp(t, st); r.Before(time.Now().Add(50 * time.Minute)) {
		t.Fatalf("retry %v", r)
	}
	// Within quota: fine.
	e.slot("e.bin", 100, "")
	// The max advertised is the quota when that is lower; a file larger
	// than the quota is too large.
	st = e.request(e.alice, e.service(), "f.bin", 601, "")
	wantError(t, "larger than max", st, "modify", "not-acceptable", "<max-file-size>600</max-file-size>")
	// Quotas are per user.
	e.AddUser("bob", "pw-bob-12")
	bob := e.Login("bob", "pw-bob-12", "r")
	parseSlot(t, e.request(bob, e.service(), "b.bin", 600, ""))
}

// fakeSession stands for a session the router delivers answers to.
type fakeSession struct {
	router.Values
	j   jid.JID
	out chan []byte
}

func (f *fakeSession) JID() jid.JID                  { return f.j }
func (f *fakeSession) Send(raw []byte) bool          { f.out <- append([]byte(nil), raw...); return true }
func (f *fakeSession) Presence() *wire.Stanza        { return nil }
func (f *fakeSession) Priority() int                 { return 0 }
func (f *fakeSession) SetPresence(*wire.Stanza, int) {}
func (f *fakeSession) Interested() bool              { return false }
func (f *fakeSession) SetInterested()                {}
func (f *fakeSession) Replace()                      {}

// ask routes a slot request from a JID that has no real session (a remote
// user, a deleted account) and returns the answer.
func ask(t *testing.T, e *env, from string) *wire.Stanza {
	t.Helper()
	fj := jid.MustParse(from)
	f := &fakeSession{j: fj, out: make(chan []byte, 4)}
	raw := []byte("<iq type='get' id='x1' to='" + e.service() + "'><request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='10' content-type='text/plain'/></iq>")
	st, err := wire.ParseElement(raw, wire.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	st.SetAddrs(from, e.service())
	r := e.Srv.Router
	r.Route(r.NewContext(context.Background(), st, fj, jid.MustParse(e.service()), f))
	select {
	case b := <-f.out:
		ans, err := wire.ParseElement(b, wire.NSClient)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return ans
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	return nil
}

func TestWhoMayUpload(t *testing.T) {
	e := start(t, nil)
	wantError(t, "remote user", ask(t, e, "romeo@montague.example/garden"), "cancel", "not-allowed")
	wantError(t, "unknown local user", ask(t, e, "ghost@localhost/r"), "auth", "forbidden")
	wantError(t, "the server itself", ask(t, e, "localhost"), "cancel", "not-allowed")
	parseSlot(t, ask(t, e, "alice@localhost/other"))
}

func TestOtherHostsUsers(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Hosts = []string{"localhost", "other.test"} })
	e.AddUser("alice", "pw-alice-1")
	e.Domain = "other.test"
	e.AddUser("bob", "pw-bob-12")
	bob := e.Login("bob", "pw-bob-12", "r")
	ue := &env{Env: e, t: t}
	st := ue.request(bob, "upload.localhost", "a.txt", 1, "text/plain")
	wantError(t, "user of another host", st, "cancel", "not-allowed")
	parseSlot(t, ue.request(bob, "upload.other.test", "a.txt", 1, "text/plain"))
}

func TestPutRefusals(t *testing.T) {
	e := start(t, func(c *upload.Config) { c.PutExpiry = 3 * time.Second })
	data := []byte("0123456789")

	// Forged and missing authorization.
	s := e.slot("a.txt", 10, "text/plain")
	forged := []byte(s.auth)
	i := len(forged) - 5
	forged[i] ^= 1
	if forged[i] == '_' || forged[i] == '-' || forged[i] > 'z' {
		forged[i] = 'A'
	}
	for _, auth := range []string{string(forged), "", "Bearer ", "Basic " + s.auth[7:], s.auth + "A"} {
		resp, _ := do(t, "PUT", s.put, bytes.NewReader(data), 10, map[string]string{"Authorization": auth, "Content-Type": "text/plain"})
		wantStatus(t, "PUT with authorization "+auth, resp, http.StatusForbidden)
	}
	// Another slot's token on this URL.
	other := e.slot("a.txt", 10, "text/plain")
	otherGranted := time.Now() // its PUT URL expires by otherGranted + 4 s
	resp, _ := do(t, "PUT", s.put, bytes.NewReader(data), 10, map[string]string{"Authorization": other.auth, "Content-Type": "text/plain"})
	wantStatus(t, "PUT with another slot's token", resp, http.StatusForbidden)
	// A URL with another file name.
	resp, _ = do(t, "PUT", strings.TrimSuffix(s.put, "a.txt")+"b.txt", bytes.NewReader(data), 10, map[string]string{"Authorization": s.auth, "Content-Type": "text/plain"})
	wantStatus(t, "PUT with another name", resp, http.StatusForbidden)
	// A made-up id.
	resp, _ = do(t, "PUT", s.put[:strings.Index(s.put, "/upload/")]+"/upload/00000000000000000000000000000000/a.txt", bytes.NewReader(data), 10, map[string]string{"Authorization": s.auth, "Content-Type": "text/plain"})
	wantStatus(t, "PUT to an unknown id", resp, http.StatusForbidden)

	// Size and type mismatches.
	resp, _ = do(t, "PUT", s.put, bytes.NewReader(data[:9]), 9, map[string]string{"Authorization": s.auth, "Content-Type": "text/plain"})
	wantStatus(t, "PUT too short", resp, http.StatusBadRequest)
	resp, _ = do(t, "PUT", s.put, bytes.NewReader(append(data, 'x')), 11, map[string]string{"Authorization": s.auth, "Content-Type": "text/plain"})
	wantStatus(t, "PUT too long", resp, http.StatusRequestEntityTooLarge)
	resp, _ = do(t, "PUT", s.put, io.MultiReader(bytes.NewReader(data)), -1, map[string]string{"Authorization": s.auth, "Content-Type": "text/plain"})
	wantStatus(t, "PUT chunked", resp, http.StatusLengthRequired)
	resp, _ = do(t, "PUT", s.put, bytes.NewReader(data), 10, map[string]string{"Authorization": s.auth, "Content-Type": "text/html"})
	wantStatus(t, "PUT with another type", resp, http.StatusUnsupportedMediaType)
	resp, _ = do(t, "PUT", s.put, bytes.NewReader(data), 10, map[string]string{"Authorization": s.auth})
	wantStatus(t, "PUT without a type", resp, http.StatusUnsupportedMediaType)

	// A body that ends early (the client's side of the connection closes
	// after 5 of 10 bytes): nothing stored, and the slot can be used again.
	// The server gives the slot back before it answers, so the answer is
	// the moment to try again.
	conn, err := net.Dial("tcp", hostOf(t, s.put))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n01234", pathOf(t, s.put), s.auth)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	cut, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("answer to an interrupted PUT: %v", err)
	}
	wantStatus(t, "interrupted PUT", cut, http.StatusBadRequest)
	resp, _ = do(t, "GET", s.get, nil, 0, nil)
	wantStatus(t, "GET after an interrupted PUT", resp, 404)

	// Parameters do not matter; case neither.
	wantStatus(t, "PUT", s.upload(t, data, "Text/Plain; charset=utf-8"), http.StatusCreated)
	// Used: one shot.
	wantStatus(t, "second PUT", s.upload(t, []byte("9876543210"), "text/plain"), http.StatusConflict)
	resp, body := do(t, "GET", s.get, nil, 0, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("after a second PUT: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("served as %q", resp.Header.Get("Content-Type"))
	}

	// Expired PUT URL (valid for 3-4 s from the request): the wait is for
	// the clock, counted from when the slot was granted, however long the
	// steps above took.
	time.Sleep(time.Until(otherGranted.Add(4100 * time.Millisecond)))
	wantStatus(t, "PUT after expiry", other.upload(t, data, "text/plain"), http.StatusForbidden)
	resp, _ = do(t, "GET", other.get, nil, 0, nil)
	wantStatus(t, "GET of an expired slot", resp, 404)
}

func hostOf(t *testing.T, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

func pathOf(t *testing.T, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.EscapedPath()
}

// rawRequest sends a request line as written (no client-side cleaning) and
// returns the status code and body.
func rawRequest(t *testing.T, host, method, path string, hdr string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n", method, path, host, hdr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTraversal(t *testing.T) {
	e := start(t, nil)
	data := []byte("secret-looking data")
	s := e.slot("a.txt", int64(len(data)), "text/plain")
	wantStatus(t, "PUT", s.upload(t, data, "text/plain"), 201)
	host := hostOf(t, s.get)
	p := pathOf(t, s.get)
	id := strings.Split(p, "/")[2]
	dataDir := e.Config.DataDir
	secret, _ := os.ReadFile(filepath.Join(dataDir, "upload-secret"))

	for _, path := range []string{
		"/upload/",
		"/upload",
		"/upload/" + id,
		"/upload/" + id + "/",
		"/upload/" + id + "/a.txt/",
		"/upload/" + id + "/a.txt/x",
		"/upload/" + id + ".meta/a.txt",
		"/upload/" + id[:2] + "/" + id,
		"/upload/" + strings.ToUpper(id) + "/a.txt",
		"/upload/" + id + "/..%2f..%2fupload-secret",
		"/upload/" + id + "/..%2F..%2F..%2Fxmppd.db",
		"/upload/..%2fupload-secret/a.txt",
		"/upload/..%2f..%2fupload-secret",
		"/upload/%2e%2e/%2e%2e/upload-secret",
		"/upload/../upload-secret",
		"/upload/" + id + "/../../upload-secret",
		"/upload/" + id + "%2fa.txt",
		"/upload/" + id + "/a.txt%00",
		"/upload/" + id + "/a.txt%2f..",
		"/upload/" + id + "/.",
		"/upload/" + id + "/..",
		"/upload/" + id + "/%2e%2e",
		"/upload/./" + id + "/a.txt",
		"//upload/" + id + "/a.txt",
		"/upload/" + id + "/a.txt?../../x",
	} {
		for _, m := range []string{"GET", "PUT"} {
			hdr := ""
			if m == "PUT" {
				hdr = "Authorization: " + s.auth + "\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
			}
			code, body := rawRequest(t, host, m, path, hdr)
			if strings.HasSuffix(path, "/a.txt?../../x") && m == "GET" {
				// The query is not part of the path: this is the file.
				if code != 200 || body != string(data) {
					t.Errorf("%s: %d", path, code)
				}
				continue
			}
			if code == 200 || code == 201 || code == 204 || code/100 == 5 {
				t.Errorf("%s %s: %d %q", m, path, code, body)
			}
			if len(secret) > 0 && strings.Contains(body, string(secret)) || strings.Contains(body, "SQLite") || strings.Contains(body, string(data)) {
				t.Errorf("%s %s leaks: %q", m, path, body)
			}
		}
	}
	// The file is intact.
	resp, body := do(t, "GET", s.get, nil, 0, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("file after the attempts: %d %q", resp.StatusCode, body)
	}
	// Other methods.
	code, _ := rawRequest(t, host, "DELETE", p, "")
	if code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", code)
	}
}

func TestExpiryAndSweeper(t *testing.T) {
	e := start(t, func(c *upload.Config) {
		c.ExpireAfter = 2 * time.Second
		c.PutExpiry = time.Second
	})
	data := []byte("short-lived")
	s := e.slot("a.txt", int64(len(data)), "text/plain")
	pending := e.slot("b.txt", 1, "text/plain")
	_ = pending
	wantStatus(t, "PUT", s.upload(t, data, "text/plain"), 201)
	resp, _ := do(t, "GET", s.get, nil, 0, nil)
	wantStatus(t, "GET", resp, 200)
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") || !strings.HasSuffix(cc, ", immutable") {
		t.Errorf("Cache-Control %q", cc)
	} else if age, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(cc, "public, max-age="), ", immutable")); age > 2 {
		t.Errorf("max-age %d beyond the file's life", age)
	}
	dir := string(e.cfg.Dir)
	if n := countFiles(t, dir); n != 3 { // a.txt data + meta, b.txt meta
		t.Fatalf("%d files before expiry", n)
	}
	time.Sleep(2100 * time.Millisecond)
	resp, _ = do(t, "GET", s.get, nil, 0, nil)
	wantStatus(t, "GET after expiry", resp, 404)
	deadline := time.Now().Add(5 * time.Second)
	for countFiles(t, dir) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper left %d files", countFiles(t, dir))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentUploads(t *testing.T) {
	e := start(t, nil)
	const users, perUser = 4, 25
	type job struct {
		s    slot
		data []byte
	}
	jobs := make([]job, 0, users*perUser)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for u := 0; u < users; u++ {
		name := fmt.Sprintf("user%d", u)
		e.AddUser(name, "pw-"+name)
		c := e.Login(name, "pw-"+name, "r")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perUser; i++ {
				data := bytes.Repeat([]byte(fmt.Sprintf("%s-%d;", name, i)), 1000+i*97)
				s := parseSlot(t, e.request(c, e.service(), fmt.Sprintf("f%d.bin", i), int64(len(data)), "application/octet-stream"))
				mu.Lock()
				jobs = append(jobs, job{s, data})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(jobs) != users*perUser {
		t.Fatalf("%d slots", len(jobs))
	}
	start := make(chan struct{})
	errs := make(chan string, len(jobs))
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("PUT", j.s.put, bytes.NewReader(j.data))
			req.Header.Set("Authorization", j.s.auth)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := httpc.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 201 {
				errs <- fmt.Sprintf("PUT %s: %d", j.s.put, resp.StatusCode)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := httpc.Get(j.s.get)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, _ := io.Copy(h, resp.Body)
			if resp.StatusCode != 200 || n != int64(len(j.data)) || !bytes.Equal(h.Sum(nil), sha(j.data)) {
				t.Errorf("GET %s: %d, %d bytes", j.s.get, resp.StatusCode, n)
			}
		}()
	}
	wg.Wait()
	if n := countFiles(t, string(e.cfg.Dir)); n != 2*len(jobs) {
		t.Fatalf("%d files on disk, want %d", n, 2*len(jobs))
	}
}

func sha(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestBaseURL(t *testing.T) {
	e := start(t, func(c *upload.Config) { c.BaseURL = "https://files.example.org:8443/xmpp/" })
	s := e.slot("a b.txt", 1, "text/plain")
	if !strings.HasPrefix(s.get, "https://files.example.org:8443/xmpp/upload/") || !strings.HasSuffix(s.get, "/a%20b.txt") {
		t.Fatalf("GET URL %s", s.get)
	}
	// The listener serves the path below the base.
	u, _ := url.Parse(s.put)
	local := "http://" + hostOf(t, e.WS) + strings.TrimPrefix(u.EscapedPath(), "/xmpp")
	req, _ := http.NewRequest("PUT", local, strings.NewReader("x"))
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, "PUT through the local listener", resp, 201)
}

func TestDisabled(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) { c.Module("upload").(*upload.Config).SetEnabled(false) })
	e.AddUser("alice", "pw-alice-1")
	c := e.Login("alice", "pw-alice-1", "r")
	st, _ := c.IQ(5*time.Second, "<iq type='get' id='i1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "i1")
	if client.Contains(st, "upload.") {
		t.Fatalf("disabled but listed: %s", st.Raw)
	}
	st, _ = c.IQ(5*time.Second, "<iq type='get' id='i2' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/></iq>", "i2")
	if st.Type != "error" {
		t.Fatalf("disabled but answered: %s", st.Raw)
	}
	resp, err := httpc.Get("http://" + hostOf(t, e.WS) + "/upload/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("disabled but mounted: %d", resp.StatusCode)
	}
}

func TestOthersPendingSlot(t *testing.T) {
	e := start(t, nil)
	e.AddUser("bob", "pw-bob-12")
	bob := e.Login("bob", "pw-bob-12", "r")
	data := []byte("alice's")
	mine := e.slot("a.txt", int64(len(data)), "text/plain")
	his := parseSlot(t, e.request(bob, e.service(), "a.txt", int64(len(data)), "text/plain"))
	resp, _ := do(t, "GET", mine.get, nil, 0, nil)
	wantStatus(t, "GET of another's pending slot", resp, 404)
	resp, _ = do(t, "HEAD", mine.get, nil, 0, nil)
	wantStatus(t, "HEAD of another's pending slot", resp, 404)
	resp, _ = do(t, "PUT", mine.put, strings.NewReader("bob's!!"), int64(len(data)), map[string]string{"Authorization": his.auth, "Content-Type": "text/plain"})
	wantStatus(t, "PUT with another user's token", resp, http.StatusForbidden)
	wantStatus(t, "the owner's PUT", mine.upload(t, data, "text/plain"), 201)
	resp, body := do(t, "GET", mine.get, nil, 0, nil)
	if resp.StatusCode != 200 || string(body) != "alice's" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestTLSListener(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Listeners.HTTP = []conf.HTTPListener{{Address: "127.0.0.1:0", TLS: true}}
	})
	e.AddUser("alice", "pw-alice-1")
	ue := &env{Env: e, t: t, alice: e.Login("alice", "pw-alice-1", "r")}
	s := ue.slot("a.txt", 5, "text/plain")
	if !strings.HasPrefix(s.put, "https://127.0.0.1:") {
		t.Fatalf("URL %s", s.put)
	}
	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed
	req, _ := http.NewRequest("PUT", s.put, strings.NewReader("hello"))
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := tc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, "PUT over TLS", resp, 201)
	resp, err = tc.Get(s.get)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("GET over TLS: %d %q", resp.StatusCode, b)
	}
}

func TestDefaultBaseURLOnEveryInterface(t *testing.T) {
	e := servertest.Start(t, func(c *conf.Config) {
		c.Listeners.HTTP = []conf.HTTPListener{{Address: ":0"}}
	})
	e.AddUser("alice", "pw-alice-1")
	ue := &env{Env: e, t: t, alice: e.Login("alice", "pw-alice-1", "r")}
	s := ue.slot("a.txt", 5, "text/plain")
	port := strconv.Itoa(e.Srv.HTTPAddrs()[0].(*net.TCPAddr).Port)
	if !strings.HasPrefix(s.put, "http://localhost:"+port+"/upload/") {
		t.Fatalf("URL %s", s.put)
	}
}

// TestSlotWhenStorageFails: an account check that storage cannot answer
// refuses the slot with a wait error the client retries on, not with
// "no such account".
func TestSlotWhenStorageFails(t *testing.T) {
	e := start(t, nil)
	if err := e.Srv.Store.Close(); err != nil { // the database is gone
		t.Fatal(err)
	}
	wantError(t, "storage failed", ask(t, e, "bob@localhost/r"), "wait", "internal-server-error")
}
