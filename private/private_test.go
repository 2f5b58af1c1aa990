package private

import (
	"context"
	"github.com/xmppd/xmppd/router/routertest"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

func TestRoundTrip(t *testing.T) {
	e := newEnv(t, Options{}, alice, bob)
	a := e.bind(alice + "/phone")
	b := e.bind(bob + "/laptop")

	// Nothing stored: the element asked for comes back empty.
	res := e.iq(a, `<iq type='get' id='g1'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query></iq>`, "g1")
	if res.Type != "result" || !strings.Contains(string(res.Raw), "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query>") {
		t.Errorf("get, nothing stored: %s", res.Raw)
	}
	res = e.iq(a, `<iq type='set' id='s1'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus><p:storage xmlns:p='storage:bookmarks'><p:conference jid='c@conference.example.com' autojoin='true'><p:nick>ham</p:nick></p:conference></p:storage></query></iq>`, "s1")
	if res.Type != "result" {
		t.Fatalf("set: %s", res.Raw)
	}
	for _, c := range []struct{ ask, want string }{
		{`<exodus xmlns='exodus:prefs'/>`, `<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>`},
		{`<storage xmlns='storage:bookmarks'/>`, `<storage xmlns='storage:bookmarks'><conference jid='c@conference.example.com' autojoin='true'><nick>ham</nick></conference></storage>`},
	} {
		res := e.iq(a, `<iq type='get' id='g2'><query xmlns='jabber:iq:private'>`+c.ask+`</query></iq>`, "g2")
		if res.Type != "result" || !strings.Contains(string(res.Raw), "<query xmlns='jabber:iq:private'>"+c.want+"</query>") {
			t.Errorf("get %s: %s", c.ask, res.Raw)
		}
	}
	// Other modules read the same store (XEP-0402 #compat).
	if got, err := e.store.Private().Get(t.Context(), alice, NSBookmarks); err != nil || !strings.HasPrefix(string(got), "<storage xmlns='storage:bookmarks'>") {
		t.Errorf("store: %q, %v", got, err)
	}

	// Two elements of one namespace are kept together; a later set replaces them.
	e.iq(a, `<iq type='set' id='s2'><query xmlns='jabber:iq:private'><a xmlns='urn:x'>1</a><b xmlns='urn:x'/></query></iq>`, "s2")
	res = e.iq(a, `<iq type='get' id='g3'><query xmlns='jabber:iq:private'><a xmlns='urn:x'/></query></iq>`, "g3")
	if !strings.Contains(string(res.Raw), "<query xmlns='jabber:iq:private'><a xmlns='urn:x'>1</a><b xmlns='urn:x'/></query>") {
		t.Errorf("two elements: %s", res.Raw)
	}
	e.iq(a, `<iq type='set' id='s3'><query xmlns='jabber:iq:private'><b xmlns='urn:x'>2</b></query></iq>`, "s3")
	res = e.iq(a, `<iq type='get' id='g4'><query xmlns='jabber:iq:private'><a xmlns='urn:x'/></query></iq>`, "g4")
	if !strings.Contains(string(res.Raw), "<query xmlns='jabber:iq:private'><b xmlns='urn:x'>2</b></query>") {
		t.Errorf("replaced: %s", res.Raw)
	}

	// Bob has his own storage and cannot touch alice's.
	res = e.iq(b, `<iq type='get' id='g5'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query></iq>`, "g5")
	if strings.Contains(string(res.Raw), "Hamlet") {
		t.Errorf("bob read alice's data: %s", res.Raw)
	}
	for _, typ := range []string{"get", "set"} {
		res = e.iq(b, `<iq type='`+typ+`' id='x' to='alice@example.com'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query></iq>`, "x")
		if res.Type != "error" || routertest.Condition(res) != "forbidden" {
			t.Errorf("bob %s on alice: %s", typ, res.Raw)
		}
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, Options{MaxSize: 200}, alice)
	a := e.bind(alice + "/phone")
	for _, c := range []struct{ raw, cond string }{
		{`<iq type='set' id='x'><query xmlns='jabber:iq:private'/></iq>`, "not-acceptable"},
		{`<iq type='get' id='x'><query xmlns='jabber:iq:private'/></iq>`, "not-acceptable"},
		{`<iq type='set' id='x'><query xmlns='jabber:iq:private'><message xmlns='jabber:client'/></query></iq>`, "not-acceptable"},
		{`<iq type='get' id='x'><query xmlns='jabber:iq:private'><db xmlns='jabber:server'/></query></iq>`, "not-acceptable"},
		{`<iq type='set' id='x'><query xmlns='jabber:iq:private'><query xmlns='jabber:iq:private'/></query></iq>`, "not-acceptable"},
		{`<iq type='set' id='x'><query xmlns='jabber:iq:private'><ok xmlns='urn:ok'/><x xmlns=''/></query></iq>`, "not-acceptable"},
		{`<iq type='get' id='x'><query xmlns='jabber:iq:private'><a xmlns='urn:a'/><b xmlns='urn:b'/></query></iq>`, "bad-request"},
		{`<iq type='get' id='x'><other xmlns='jabber:iq:private'><a xmlns='urn:a'/></other></iq>`, "bad-request"},
		{`<iq type='set' id='x'><query xmlns='jabber:iq:private'><big xmlns='urn:big'>` + strings.Repeat("x", 200) + `</big></query></iq>`, "not-acceptable"},
	} {
		res := e.iq(a, c.raw, "x")
		if res.Type != "error" || routertest.Condition(res) != c.cond {
			t.Errorf("%.90s: %s, want %s", c.raw, res.Raw, c.cond)
		}
	}
	// A refused set stored nothing, not even its acceptable part.
	if _, err := e.store.Private().Get(t.Context(), alice, "urn:ok"); err == nil {
		t.Error("part of a refused set was stored")
	}
	// The limit counts what the user keeps in total.
	if res := e.iq(a, `<iq type='set' id='s'><query xmlns='jabber:iq:private'><a xmlns='urn:a'>`+strings.Repeat("x", 100)+`</a></query></iq>`, "s"); res.Type != "result" {
		t.Fatalf("set within the limit: %s", res.Raw)
	}
	if res := e.iq(a, `<iq type='set' id='s'><query xmlns='jabber:iq:private'><b xmlns='urn:b'>`+strings.Repeat("x", 100)+`</b></query></iq>`, "s"); res.Type != "error" || routertest.Condition(res) != "not-acceptable" {
		t.Errorf("set past the total: %s", res.Raw)
	}
}

type memHandler struct{ data map[string][]byte }

func (h *memHandler) GetPrivate(_ context.Context, owner string) ([]byte, error) {
	if d, ok := h.data[owner]; ok {
		return d, nil
	}
	return nil, storage.ErrNotFound
}

func (h *memHandler) SetPrivate(_ context.Context, owner string, xml []byte) error {
	h.data[owner] = xml
	return nil
}

func TestHandle(t *testing.T) {
	e := newEnv(t, Options{}, alice)
	h := &memHandler{data: map[string][]byte{}}
	e.m.Handle(NSBookmarks, h)
	a := e.bind(alice + "/phone")
	res := e.iq(a, `<iq type='set' id='s'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><url name='x' url='http://x'/></storage><o xmlns='urn:other'/></query></iq>`, "s")
	if res.Type != "result" {
		t.Fatalf("set: %s", res.Raw)
	}
	if got := string(h.data[alice]); got != "<storage xmlns='storage:bookmarks'><url name='x' url='http://x'/></storage>" {
		t.Errorf("handler got %q", got)
	}
	if _, err := e.store.Private().Get(t.Context(), alice, NSBookmarks); err == nil {
		t.Error("a handled namespace was also stored")
	}
	if _, err := e.store.Private().Get(t.Context(), alice, "urn:other"); err != nil {
		t.Errorf("the other namespace was not stored: %v", err)
	}
	res = e.iq(a, `<iq type='get' id='g'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`, "g")
	if !strings.Contains(string(res.Raw), "url='http://x'") {
		t.Errorf("get through the handler: %s", res.Raw)
	}
}
