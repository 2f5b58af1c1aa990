package c2s_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// hostileStanzas are messages that are well-formed XML but use a prefix a
// recipient's stream never declared: forwarded as they are, they would end
// the recipient's stream with bad-namespace-prefix (again at every login if
// stored). header is added to the sender's stream header.
var hostileStanzas = []struct{ name, header, msg string }{
	{"element after the first child", "", "<message to='%s' id='evil'><body>hi</body><evil:x/></message>"},
	{"attribute on the body", "", "<message to='%s' id='evil'><body evil:a='1'>hi</body></message>"},
	{"deep under a default namespace", "", "<message to='%s' id='evil'><body>hi</body><y xmlns='urn:a'><z><w><evil:z/></w></z></y></message>"},
	{"declared on a sibling only", "", "<message to='%s' id='evil'><body>hi</body><a xmlns:p='urn:p'><p:x/></a><b><p:x/></b></message>"},
	{"declared on the sender's stream header", " xmlns:evil='urn:evil'", "<message to='%s' id='evil'><body>hi</body><x><evil:x/></x></message>"},
}

// streamError waits for the stream error c's server sends and returns its
// condition.
func streamError(t *testing.T, c *client.Client) string {
	t.Helper()
	st, err := c.Expect(timeout, func(st *wire.Stanza) bool { return st.NS == wire.NSStream && st.Name == "error" })
	if err != nil {
		t.Fatalf("no stream error: %v", err)
	}
	for ch := range st.Children() {
		if ch.NS == wire.NSStreams && ch.Name != "text" {
			return ch.Name
		}
	}
	t.Fatalf("stream error without a condition: %s", st.Raw)
	return ""
}

// TestHostilePrefixOnline: the sender of a stanza with an undeclared prefix
// at any depth gets bad-namespace-prefix, and the online recipient gets
// nothing: a later marker from a third party is the next thing it reads,
// on a stream that stays healthy.
func TestHostilePrefixOnline(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("mallory", "pw-mallory")
	e.AddUser("bob", "pw-bob")
	e.AddUser("carol", "pw-carol")
	bob := e.Login("bob", "pw-bob", "r")
	carol := e.Login("carol", "pw-carol", "r")
	for i, tc := range hostileStanzas {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.ClientConfig("mallory", "pw-mallory", "r")
			cfg.HeaderAttrs = tc.header
			mallory := e.LoginWith(cfg)
			if err := mallory.Send(fmt.Sprintf(tc.msg, bob.JID)); err != nil {
				t.Fatal(err)
			}
			if cond := streamError(t, mallory); cond != "bad-namespace-prefix" {
				t.Fatalf("sender got %s, want bad-namespace-prefix", cond)
			}
			marker := fmt.Sprint("marker", i)
			if err := carol.Send("<message to='" + bob.JID + "' id='" + marker + "' type='chat'><body>after</body></message>"); err != nil {
				t.Fatal(err)
			}
			st, err := bob.Next(timeout)
			if err != nil {
				t.Fatalf("recipient: %v", err)
			}
			if st.ID != marker {
				t.Fatalf("recipient read %s before the marker", st.Raw)
			}
			if _, err := bob.IQ(timeout, "<iq type='get' id='alive"+marker+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "alive"+marker); err != nil {
				t.Fatalf("recipient's stream after the marker: %v", err)
			}
		})
	}
}

// TestHostilePrefixOffline: nothing of a refused stanza reaches offline
// storage or the archive of an offline recipient (or the sender's): at the
// next login the recipient's first message is the marker sent after it.
func TestHostilePrefixOffline(t *testing.T) {
	e := servertest.Start(t, nil)
	mallory := e.AddUser("mallory", "pw-mallory")
	bob := e.AddUser("bob", "pw-bob")
	e.AddUser("carol", "pw-carol")
	carol := e.Login("carol", "pw-carol", "r")
	for _, tc := range hostileStanzas {
		cfg := e.ClientConfig("mallory", "pw-mallory", "r")
		cfg.HeaderAttrs = tc.header
		m := e.LoginWith(cfg)
		if err := m.Send(fmt.Sprintf(tc.msg, bob)); err != nil {
			t.Fatal(err)
		}
		if cond := streamError(t, m); cond != "bad-namespace-prefix" {
			t.Fatalf("%s: sender got %s, want bad-namespace-prefix", tc.name, cond)
		}
	}
	if err := carol.Send("<message to='" + bob + "' id='marker' type='chat'><body>after</body></message>"); err != nil {
		t.Fatal(err)
	}
	b := e.Login("bob", "pw-bob", "r")
	if err := b.Send("<presence/>"); err != nil {
		t.Fatal(err)
	}
	st, err := b.Expect(timeout, client.Kind(wire.KindMessage))
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "marker" {
		t.Fatalf("first offline message is %s, want the marker", st.Raw)
	}
	// The marker was archived before it was stored offline (module
	// order), so the archives are complete now.
	ctx := context.Background()
	for _, owner := range []string{bob, mallory} {
		page, err := e.Srv.Store.Archive().Query(ctx, storage.ArchiveQuery{Owner: owner, Max: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Messages {
			ids = append(ids, m.MessageID)
			if strings.Contains(string(m.Stanza), "evil") || strings.Contains(string(m.Stanza), "p:x") {
				t.Errorf("%s's archive holds %s", owner, m.Stanza)
			}
		}
		want := ""
		if owner == bob {
			want = "marker"
		}
		if strings.Join(ids, ",") != want {
			t.Errorf("%s's archive: %v, want [%s]", owner, ids, want)
		}
	}
}

// TestStreamHeaderPrefixLimit: a header declaring thousands of prefixes
// is refused with policy-violation (decoding each later stanza used to
// cost time in proportion to them).
func TestStreamHeaderPrefixLimit(t *testing.T) {
	e := servertest.Start(t, nil)
	var decls strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&decls, " xmlns:p%d='urn:p:%d'", i, i)
	}
	big := strings.Replace(header, " version='1.0'>", " version='1.0'"+decls.String()+">", 1)
	out := rawSession(t, e.StartTLS, big, "</stream:stream>")
	wantStreamError(t, out, "policy-violation")

	// A few are fine.
	few := strings.Replace(header, " version='1.0'>", " version='1.0' xmlns:a='urn:a' xmlns:b='urn:b'>", 1)
	out = rawSession(t, e.StartTLS, few, "</stream:stream>")
	if strings.Contains(out, "<stream:error") || !strings.Contains(out, "<stream:features") {
		t.Fatalf("header with two extra prefixes: %q", out)
	}
}

// TestStreamLangApplied: RFC 6120 §4.7.4. A stanza without xml:lang from
// a stream whose header said xml:lang='de' reaches the recipient with
// xml:lang='de'; one with its own xml:lang keeps it; a stream without a
// language adds none.
func TestStreamLangApplied(t *testing.T) {
	e := servertest.Start(t, nil)
	e.AddUser("alice", "pw-alice")
	e.AddUser("bob", "pw-bob")
	e.AddUser("carol", "pw-carol")
	bob := e.Login("bob", "pw-bob", "r")
	cfg := e.ClientConfig("alice", "pw-alice", "r")
	cfg.HeaderAttrs = " xml:lang='de'"
	alice := e.LoginWith(cfg)
	carol := e.Login("carol", "pw-carol", "r")

	send := func(c *client.Client, raw string) {
		t.Helper()
		if err := c.Send(raw); err != nil {
			t.Fatal(err)
		}
	}
	send(alice, "<message to='"+bob.JID+"' id='m1' type='chat'><body>Hallo</body></message>")
	send(alice, "<message to='"+bob.JID+"' id='m2' type='chat' xml:lang='fr'><body>Salut</body></message>")
	send(alice, "<presence to='"+bob.JID+"' id='m3'><status>Hier</status></presence>")
	send(carol, "<message to='"+bob.JID+"' id='m4' type='chat'><body>Hello</body></message>")
	for _, want := range []struct{ id, lang string }{{"m1", "de"}, {"m2", "fr"}, {"m3", "de"}, {"m4", ""}} {
		st, err := bob.Expect(timeout, client.ID(want.id))
		if err != nil {
			t.Fatalf("%s: %v", want.id, err)
		}
		if st.Lang != want.lang {
			t.Errorf("%s arrived with xml:lang %q, want %q: %s", want.id, st.Lang, want.lang, st.Raw)
		}
		if n := strings.Count(string(st.Raw), "xml:lang="); n > 1 {
			t.Errorf("%s: %d xml:lang attributes: %s", want.id, n, st.Raw)
		}
	}
}
