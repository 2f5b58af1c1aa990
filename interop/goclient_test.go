package interop

import (
	"encoding/xml"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/wire"
)

// The peer on the other side of the third-party clients is xmppd's own Go
// client (package client).

type goMessage struct {
	XMLName xml.Name `xml:"jabber:client message"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	Type    string   `xml:"type,attr"`
	ID      string   `xml:"id,attr"`
	Body    string   `xml:"jabber:client body"`
	Delay   *struct {
		Stamp string `xml:"stamp,attr"`
	} `xml:"urn:xmpp:delay delay"`
}

// expectGoMessage waits for a message with a body from c.
func expectGoMessage(t *testing.T, c *client.Client, what string) goMessage {
	t.Helper()
	st, err := c.Expect(waitEvent, func(st *wire.Stanza) bool {
		return st.Kind == wire.KindMessage && st.HasChild(wire.NSClient, "body")
	})
	if err != nil {
		t.Fatalf("Go client: waiting for %s: %v", what, err)
	}
	var m goMessage
	if err := st.Decode(&m); err != nil {
		t.Fatalf("Go client: decoding %s: %v", st.Raw, err)
	}
	return m
}

// goOnline logs local in with the Go client and sends initial presence.
func goOnline(t *testing.T, c *client.Client) {
	t.Helper()
	if err := c.Send("<presence/>"); err != nil {
		t.Fatal(err)
	}
	// Our own presence comes back (RFC 6121 §4.2.2): the session is available.
	if _, err := c.Expect(10*time.Second, func(st *wire.Stanza) bool {
		return st.Kind == wire.KindPresence && st.From == c.JID
	}); err != nil {
		t.Fatalf("Go client: own initial presence: %v", err)
	}
}
