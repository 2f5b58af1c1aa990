package router

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/wire"
)

type fakeSession struct {
	Values
	j        jid.JID
	mu       sync.Mutex
	got      []string
	presence *wire.Stanza
	priority int
}

func (s *fakeSession) JID() jid.JID { return s.j }
func (s *fakeSession) Send(raw []byte) bool {
	s.mu.Lock()
	s.got = append(s.got, string(raw))
	s.mu.Unlock()
	return true
}
func (s *fakeSession) Presence() *wire.Stanza { return s.presence }
func (s *fakeSession) Priority() int          { return s.priority }
func (s *fakeSession) SetPresence(p *wire.Stanza, prio int) {
	s.presence, s.priority = p, prio
}
func (s *fakeSession) Interested() bool { return false }
func (s *fakeSession) SetInterested()   {}
func (s *fakeSession) Replace()         {}

type accounts map[string]bool

func (a accounts) Exists(_ context.Context, bare string) bool { return a[bare] }

// world: alice (phone available prio 1, laptop available prio -1), bob
// (account, no session), server localhost.
func world(t *testing.T) (*Router, *fakeSession, *fakeSession, *fakeSession, *[]string) {
	r := New(slog.New(slog.NewTextHandler(io.Discard, nil)), func(d string) bool { return d == "localhost" },
		accounts{"alice@localhost": true, "bob@localhost": true, "carol@localhost": true})
	mk := func(s string, prio int, avail bool) *fakeSession {
		f := &fakeSession{j: jid.MustParse(s), priority: prio}
		if avail {
			f.presence = &wire.Stanza{Kind: wire.KindPresence}
		}
		r.Bind(f)
		return f
	}
	phone := mk("alice@localhost/phone", 1, true)
	laptop := mk("alice@localhost/laptop", -1, true)
	carol := mk("carol@localhost/desk", 0, true)
	var offline []string
	r.OnOffline(func(c *Context) bool { offline = append(offline, c.To.String()); return true })
	r.HandleIQ("get", "urn:xmpp:ping", ToServer, func(c *Context) { c.Reply(nil) })
	r.HandleIQ("get", "vcard-temp", ToBare, func(c *Context) { c.Reply([]byte("<vCard xmlns='vcard-temp'/>")) })
	return r, phone, laptop, carol, &offline
}

func route(t *testing.T, r *Router, from *fakeSession, raw string) {
	t.Helper()
	st, err := wire.ParseElement([]byte(raw), wire.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	var to jid.JID
	if st.To != "" {
		to = jid.MustParse(st.To)
	}
	st.SetAddrs(from.j.String(), st.To)
	r.Route(&Context{Context: context.Background(), Router: r, Stanza: st, From: from.j, To: to, Origin: from})
}

func TestDeliveryRules(t *testing.T) {
	cases := []struct {
		name                 string
		send                 string
		phone, laptop, carol string // substring each must receive ("" = nothing)
		offline              bool
	}{
		{"chat to bare: non-negative priority only", "<message type='chat' to='alice@localhost'><body>hi</body></message>", "<body>hi", "", "", false},
		{"normal to full of negative-priority resource", "<message to='alice@localhost/laptop'><body>x</body></message>", "", "<body>x", "", false},
		{"chat to offline resource goes to bare rules", "<message type='chat' to='alice@localhost/gone'><body>y</body></message>", "<body>y", "", "", false},
		{"chat to account without sessions is stored", "<message type='chat' to='bob@localhost'><body>z</body></message>", "", "", "", true},
		{"chat to a full JID of an account without sessions is stored", "<message type='chat' to='bob@localhost/r'><body>z</body></message>", "", "", "", true},
		{"headline to account without sessions is dropped", "<message type='headline' to='bob@localhost'><body>h</body></message>", "", "", "", false},
		{"groupchat to bare is an error", "<message type='groupchat' to='alice@localhost'><body>g</body></message>", "", "", "service-unavailable", false},
		{"message to missing account is an error", "<message type='chat' to='nobody@localhost'><body>n</body></message>", "", "", "service-unavailable", false},
		{"iq to offline full JID is an error", "<iq type='get' id='1' to='alice@localhost/gone'><ping xmlns='urn:xmpp:ping'/></iq>", "", "", "service-unavailable", false},
		{"iq to full JID is delivered", "<iq type='get' id='2' to='alice@localhost/phone'><ping xmlns='urn:xmpp:ping'/></iq>", "urn:xmpp:ping", "", "", false},
		{"iq to server handled", "<iq type='get' id='3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "", "", "type='result'", false},
		{"iq to bare handled for the account", "<iq type='get' id='4' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>", "", "", "<vCard", false},
		{"unknown iq to server", "<iq type='get' id='5' to='localhost'><x xmlns='urn:unknown'/></iq>", "", "", "service-unavailable", false},
		{"iq set of a get-only namespace", "<iq type='set' id='7' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "", "", "feature-not-implemented", false},
		{"iq set without payload", "<iq type='set' id='6' to='localhost'/>", "", "", "bad-request", false},
		{"presence to full JID", "<presence to='alice@localhost/laptop'/>", "", "<presence", "", false},
		{"presence to bare goes to all available", "<presence to='alice@localhost'/>", "<presence", "<presence", "", false},
		{"presence to missing account dropped", "<presence to='nobody@localhost'/>", "", "", "", false},
		{"remote domain", "<message type='chat' to='x@remote.example'><body>r</body></message>", "", "", "remote-server-not-found", false},
		{"error is never answered", "<message type='error' to='nobody@localhost'/>", "", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, phone, laptop, carol, offline := world(t)
			route(t, r, carol, tc.send)
			for _, chk := range []struct {
				s    *fakeSession
				want string
			}{{phone, tc.phone}, {laptop, tc.laptop}, {carol, tc.carol}} {
				all := strings.Join(chk.s.got, "")
				if chk.want == "" && all != "" {
					t.Errorf("%s got %q, want nothing", chk.s.j, all)
				} else if chk.want != "" && !strings.Contains(all, chk.want) {
					t.Errorf("%s got %q, want %q", chk.s.j, all, chk.want)
				}
			}
			if (len(*offline) > 0) != tc.offline {
				t.Errorf("offline hook ran: %v, want %v", *offline, tc.offline)
			}
		})
	}
}

func TestRepliesCarryAddresses(t *testing.T) {
	r, _, _, carol, _ := world(t)
	route(t, r, carol, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	want := "<iq type='result' id='p1' from='localhost' to='carol@localhost/desk'/>"
	if len(carol.got) != 1 || carol.got[0] != want {
		t.Fatalf("got %q, want %q", carol.got, want)
	}
}

func TestBindReplaces(t *testing.T) {
	r, phone, _, _, _ := world(t)
	again := &fakeSession{j: phone.j}
	if old := r.Bind(again); old != phone {
		t.Fatalf("Bind returned %v, want the old session", old)
	}
	if got := r.Resource("alice@localhost", "phone"); got != again {
		t.Fatal("the new session is not the bound one")
	}
	r.Unbind(phone) // the replaced one leaving must not unbind the new one
	if got := r.Resource("alice@localhost", "phone"); got != again {
		t.Fatal("unbinding the replaced session removed the new one")
	}
}

func TestServiceAndQuery(t *testing.T) {
	r, phone, _, carol, _ := world(t)
	var seen []string
	r.RegisterService("push.localhost", func(c *Context) {
		seen = append(seen, c.Stanza.Name+" "+c.To.String())
		if c.Stanza.Kind == wire.KindIQ && c.Stanza.Type == "get" {
			c.Reply([]byte("<pong xmlns='urn:example'/>"))
		}
	})
	if !r.IsLocal("push.localhost") {
		t.Fatal("a service domain is not local")
	}
	route(t, r, carol, "<iq type='get' id='s1' to='push.localhost'><x xmlns='urn:example'/></iq>")
	if len(seen) != 1 || seen[0] != "iq push.localhost" || len(carol.got) != 1 || !strings.Contains(carol.got[0], "<pong") {
		t.Fatalf("service saw %q, carol got %q", seen, carol.got)
	}
	// The server asks the phone something and gets its answer back.
	done := make(chan *wire.Stanza, 1)
	go func() {
		ans, err := r.Query(context.Background(), jid.MustParse("localhost"), phone.j, "get", []byte("<query xmlns='http://jabber.org/protocol/disco#info'/>"))
		if err != nil {
			t.Error(err)
		}
		done <- ans
	}()
	var req *wire.Stanza
	for req == nil {
		phone.mu.Lock()
		if len(phone.got) > 0 {
			req, _ = wire.ParseElement([]byte(phone.got[len(phone.got)-1]), wire.NSClient)
		}
		phone.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	route(t, r, phone, "<iq type='result' id='"+req.ID+"' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:x'/></query></iq>")
	ans := <-done
	if ans == nil || ans.Type != "result" || !strings.Contains(string(ans.Raw), "urn:x") {
		t.Fatalf("answer %v", ans)
	}
}

func TestQueryGetsRouterErrors(t *testing.T) {
	r, _, _, _, _ := world(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A query to a remote domain is answered by the router itself.
	ans, err := r.Query(ctx, jid.MustParse("alice@localhost"), jid.MustParse("push.remote.example"), "set", []byte("<pubsub xmlns='http://jabber.org/protocol/pubsub'/>"))
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if ans.Type != "error" || !strings.Contains(string(ans.Raw), "remote-server-not-found") {
		t.Fatalf("got %s", ans.Raw)
	}
}
