package mam

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

// recordingStore records the messages its archive's Enqueue is given.
type recordingStore struct {
	storage.Store
	a *recordingArchive
}

func (s recordingStore) Archive() storage.Archive { return s.a }

type recordingArchive struct {
	storage.Archive
	mu   sync.Mutex
	msgs []storage.ArchiveMessage
}

func (a *recordingArchive) Enqueue(ctx context.Context, msgs []storage.ArchiveMessage) <-chan error {
	res := a.Archive.Enqueue(ctx, msgs)
	a.mu.Lock()
	a.msgs = append(a.msgs, msgs...)
	a.mu.Unlock()
	return res
}

type testSession struct {
	router.Values
	j    jid.JID
	mu   sync.Mutex
	sent [][]byte
}

var available = &wire.Stanza{Kind: wire.KindPresence, Name: "presence", Raw: []byte("<presence/>")}

func (s *testSession) JID() jid.JID { return s.j }
func (s *testSession) Send(b []byte) bool {
	s.mu.Lock()
	s.sent = append(s.sent, b)
	s.mu.Unlock()
	return true
}
func (s *testSession) Presence() *wire.Stanza        { return available }
func (s *testSession) Priority() int                 { return 0 }
func (s *testSession) SetPresence(*wire.Stanza, int) {}
func (s *testSession) Interested() bool              { return true }
func (s *testSession) SetInterested()                {}
func (s *testSession) Replace()                      {}

type everyoneExists struct{}

func (everyoneExists) Exists(context.Context, string) bool { return true }

// TestLocalMessageStoredOnce: a message between two local users is
// archived twice (the sender's row and the recipient's) from one stored
// copy, so the archive writer encodes it once; when the element changed
// between the two hooks (the recipient's spoofed stanza-id removed), the
// recipient's row has its own copy without it. Both rows read back as
// the element routed.
func TestLocalMessageStoredOnce(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range []string{"a@x", "b@x"} {
		if err := s.Accounts().Create(ctx, storage.Account{JID: u}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recordingArchive{Archive: s.Archive()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := router.New(log, func(d string) bool { return d == "x" }, everyoneExists{})
	New(r, recordingStore{Store: s, a: rec}, log, nil)
	a := &testSession{j: jid.MustParse("a@x/r")}
	b := &testSession{j: jid.MustParse("b@x/r")}
	r.Bind(a)
	r.Bind(b)

	send := func(body string) (out, in storage.ArchiveMessage) {
		t.Helper()
		rec.mu.Lock()
		rec.msgs = nil
		rec.mu.Unlock()
		st := parse(t, "<message type='chat' to='b@x' id='m1'>"+body+"</message>")
		st.SetAddrs(a.j.String(), "b@x")
		c := &router.Context{Context: ctx, Router: r, Stanza: st, From: a.j, To: jid.MustParse("b@x"), Origin: a}
		r.Route(c)
		for _, h := range c.Holds() {
			if err := <-h; err != nil {
				t.Fatal(err)
			}
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.msgs) != 2 || rec.msgs[0].Owner != "a@x" || rec.msgs[1].Owner != "b@x" {
			t.Fatalf("archived %+v, want a@x's row then b@x's", rec.msgs)
		}
		return rec.msgs[0], rec.msgs[1]
	}
	same := func(x, y []byte) bool { return len(x) > 0 && len(x) == len(y) && &x[0] == &y[0] }

	out, in := send("<body>hello</body>")
	if !same(out.Stanza, in.Stanza) {
		t.Errorf("the two rows hold two copies of the message:\n%s\n%s", out.Stanza, in.Stanza)
	}
	for _, m := range []storage.ArchiveMessage{out, in} {
		got, err := s.Archive().Get(ctx, m.Owner, m.Seq)
		if err != nil || string(got.Stanza) != string(out.Stanza) {
			t.Errorf("%s's row: %s, %v; want %s", m.Owner, got.Stanza, err, out.Stanza)
		}
	}

	// A stanza-id claiming b's archive is b's to remove before archiving
	// it for b: b's row is then a copy of its own.
	out, in = send("<body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='b@x' id='forged'/>")
	if same(out.Stanza, in.Stanza) || strings.Contains(string(in.Stanza), "forged") {
		t.Errorf("b's row %s shares a's copy or keeps the forged stanza-id", in.Stanza)
	}
	got, err := s.Archive().Get(ctx, "b@x", in.Seq)
	if err != nil || strings.Contains(string(got.Stanza), "forged") || !strings.Contains(string(got.Stanza), "<body>hi</body>") {
		t.Errorf("b's row reads back as %s, %v", got.Stanza, err)
	}
}
