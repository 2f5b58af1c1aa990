package sqlite

import (
	"bytes"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/archivegen"
	"github.com/xmppd/xmppd/storage"
)

// TestArchiveStanzaCompressed: the archive stores typical chat messages in
// at most 60 % of their bytes, and every message, whatever its content, reads
// back exactly as it was appended (Get, Query, FindByMessageID, after
// Retract).
func TestArchiveStanzaCompressed(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	ctx := t.Context()
	const owner = "juliet@example.com"
	if err := s.Accounts().Create(ctx, storage.Account{JID: owner}); err != nil {
		t.Fatal(err)
	}
	st := archivegen.NewState(1000, time.Hour)
	var msgs []storage.ArchiveMessage
	for _, m := range st.BatchRows(0)[:200] {
		m.Owner, m.Stamp = owner, time.Time{}
		msgs = append(msgs, m)
	}
	odd := [][]byte{
		{},                                     // empty
		[]byte("<m/>"),                         // too short to gain
		{0, 1, 2, 3},                           // starts like a compressed value
		{0},                                    // the tag alone
		[]byte("\x00\x01<message/>"),           // the tag and the algorithm
		[]byte("\x00\x01\xff\xff\xff\xff\x0f"), // and an absurd length
		bytes.Repeat([]byte("<a>é</a>"), 20000),
	}
	for i, b := range odd {
		msgs = append(msgs, storage.ArchiveMessage{Owner: owner, With: "romeo@example.net", MessageID: string(rune('a' + i)), Stanza: b})
	}
	if err := s.Archive().Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	var raw, stored int64
	for _, m := range msgs[:200] {
		var n int64
		if err := s.r.QueryRow("SELECT length(stanza) FROM (SELECT seq, stanza FROM archive UNION ALL SELECT seq, stanza FROM archive_tail) WHERE seq = ?", m.Seq).Scan(&n); err != nil {
			t.Fatal(err)
		}
		raw += int64(len(m.Stanza))
		stored += n
	}
	t.Logf("200 chat messages: %d bytes, %d stored (%.0f %%)", raw, stored, 100*float64(stored)/float64(raw))
	if stored*10 > raw*6 {
		t.Errorf("200 chat messages of %d bytes stored in %d bytes, want at most 60 %%", raw, stored)
	}
	p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: owner, Max: 1000})
	if err != nil || len(p.Messages) != len(msgs) {
		t.Fatalf("Query: %d messages, %v", len(p.Messages), err)
	}
	for i, m := range p.Messages {
		if !bytes.Equal(m.Stanza, msgs[i].Stanza) {
			t.Errorf("message %d: Query read %.40q, appended %.40q", i, m.Stanza, msgs[i].Stanza)
		}
		g, err := s.Archive().Get(ctx, owner, m.Seq)
		if err != nil || !bytes.Equal(g.Stanza, msgs[i].Stanza) {
			t.Errorf("message %d: Get read %.40q, %v", i, g.Stanza, err)
		}
	}
	last := msgs[len(msgs)-1]
	f, err := s.Archive().FindByMessageID(ctx, owner, "romeo@example.net", false, last.MessageID)
	if err != nil || !bytes.Equal(f.Stanza, last.Stanza) {
		t.Errorf("FindByMessageID: %.40q, %v", f.Stanza, err)
	}
	tomb := []byte("<message xmlns='jabber:client' id='x'><retracted xmlns='urn:xmpp:message-retract:1' id='r' stamp='2026-01-01T00:00:00Z'/></message>")
	if err := s.Archive().Retract(ctx, owner, msgs[0].Seq, tomb, time.Now()); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Archive().Get(ctx, owner, msgs[0].Seq); err != nil || !bytes.Equal(g.Stanza, tomb) {
		t.Errorf("after Retract: %q, %v", g.Stanza, err)
	}
}

// TestArchiveStanzaUncompressedRows: rows written before the archive
// compressed stanzas (the element as it is) still read as they are, next
// to compressed ones; a value in an encoding this version does not know is
// an error, not garbage.
func TestArchiveStanzaUncompressedRows(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	ctx := t.Context()
	const owner = "juliet@example.com"
	if err := s.Accounts().Create(ctx, storage.Account{JID: owner}); err != nil {
		t.Fatal(err)
	}
	old := []byte("<message xmlns='jabber:client' to='romeo@example.net' type='chat' id='old'><body>written by an older xmppd, written by an older xmppd</body></message>")
	if _, err := s.w.Exec("INSERT INTO archive (seq, owner, with_bare, outgoing, stanza) VALUES (1000, ?, 'romeo@example.net', 1, ?)", owner, old); err != nil {
		t.Fatal(err)
	}
	m := []storage.ArchiveMessage{{Owner: owner, With: "romeo@example.net", Outgoing: true, Stanza: bytes.ReplaceAll(old, []byte("old"), []byte("new"))}}
	if err := s.Archive().Append(ctx, m); err != nil {
		t.Fatal(err)
	}
	p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: owner, Max: 10})
	if err != nil || len(p.Messages) != 2 {
		t.Fatalf("Query: %+v, %v", p, err)
	}
	if !bytes.Equal(p.Messages[0].Stanza, old) || !bytes.Equal(p.Messages[1].Stanza, m[0].Stanza) {
		t.Errorf("read %q and %q", p.Messages[0].Stanza, p.Messages[1].Stanza)
	}
	if _, err := s.w.Exec("INSERT INTO archive (seq, owner, with_bare, outgoing, stanza) VALUES (2000, ?, 'romeo@example.net', 1, x'0007aabb')", owner); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Archive().Get(ctx, owner, 2000); err == nil {
		t.Error("Get of a stanza in an unknown encoding: no error")
	}
	// A corrupt value claiming 4 GiB is an error, not an allocation.
	if _, err := s.w.Exec("INSERT INTO archive (seq, owner, with_bare, outgoing, stanza) VALUES (3000, ?, 'romeo@example.net', 1, x'0001ffffffff0f00')", owner); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Archive().Get(ctx, owner, 3000); err == nil {
		t.Error("Get of a corrupt compressed stanza: no error")
	}
}

// BenchmarkArchiveCodec is the CPU cost of compressing and decompressing a
// generated chat message (about 490 bytes).
func BenchmarkArchiveCodec(b *testing.B) {
	st := archivegen.NewState(1000, time.Hour)
	rows := st.BatchRows(0)
	var raw, enc int
	b.Run("encode", func(b *testing.B) {
		i := 0
		done := measure(b)
		for b.Loop() {
			s := rows[i%len(rows)].Stanza
			raw += len(s)
			enc += len(encodeStanza(s))
			i++
		}
		done()
		b.ReportMetric(float64(enc)/float64(raw), "ratio")
	})
	encoded := make([][]byte, len(rows))
	for i := range rows {
		encoded[i] = encodeStanza(rows[i].Stanza)
	}
	b.Run("decode", func(b *testing.B) {
		i := 0
		done := measure(b)
		for b.Loop() {
			if _, err := decodeStanza(encoded[i%len(encoded)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		done()
	})
}
