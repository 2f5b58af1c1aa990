package sqlite

import (
	"fmt"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestWriterPragmas: the writer connection checkpoints every 4096 WAL
// pages, also after the pool reopens it.
func TestWriterPragmas(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	check := func() {
		t.Helper()
		var ckpt int
		if err := s.w.QueryRow("PRAGMA wal_autocheckpoint").Scan(&ckpt); err != nil {
			t.Fatal(err)
		}
		if ckpt != 4096 {
			t.Errorf("writer wal_autocheckpoint = %d, want 4096", ckpt)
		}
	}
	check()
	// A new writer connection (the pool replaces a broken one) gets them too.
	s.w.SetMaxIdleConns(0)
	s.w.SetMaxIdleConns(1)
	check()
}

// TestArchiveAppendChunks: one Append of any size is written in
// power-of-two chunks; every message is stored, in order, with strictly
// increasing Seq, and an unknown owner in the same batch fails alone.
func TestArchiveAppendChunks(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	ctx := t.Context()
	for _, u := range []string{"a@example.com", "b@example.com"} {
		if err := s.Accounts().Create(ctx, storage.Account{JID: u}); err != nil {
			t.Fatal(err)
		}
	}
	a := s.Archive()
	total := 0
	for _, n := range []int{1, 2, 3, 127, 128, 129, 255, 300, 1000} {
		msgs := make([]storage.ArchiveMessage, n)
		for i := range msgs {
			msgs[i] = storage.ArchiveMessage{Owner: []string{"a@example.com", "b@example.com"}[i%2], With: "c@example.net/r",
				MessageID: fmt.Sprintf("%d-%d", n, i), Stanza: []byte(fmt.Sprintf("<message xmlns='jabber:client' id='%d-%d'/>", n, i))}
		}
		if err := a.Append(ctx, msgs); err != nil {
			t.Fatalf("Append(%d): %v", n, err)
		}
		for i := 1; i < n; i++ {
			if msgs[i].Seq <= msgs[i-1].Seq {
				t.Fatalf("Append(%d): Seq %d after %d", n, msgs[i].Seq, msgs[i-1].Seq)
			}
		}
		total += n
	}
	bad := []storage.ArchiveMessage{{Owner: "nobody@example.com", With: "c@example.net", Stanza: []byte("<message/>")}}
	if err := a.Append(ctx, bad); err != storage.ErrNotFound {
		t.Fatalf("Append for an unknown owner: %v, want ErrNotFound", err)
	}
	var got []storage.ArchiveMessage
	for _, o := range []string{"a@example.com", "b@example.com"} {
		p, err := a.Query(ctx, storage.ArchiveQuery{Owner: o, Max: 10000})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Messages...)
	}
	if len(got) != total {
		t.Fatalf("%d messages stored, want %d", len(got), total)
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.MessageID] {
			t.Fatalf("message %s stored twice", m.MessageID)
		}
		seen[m.MessageID] = true
		if want := fmt.Sprintf("<message xmlns='jabber:client' id='%s'/>", m.MessageID); string(m.Stanza) != want {
			t.Fatalf("message %s: stanza %s", m.MessageID, m.Stanza)
		}
	}
}
