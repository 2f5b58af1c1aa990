package sqlite

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestFindByMessageIDWindow: a retraction's lookup reads at most the
// conversation's findWindow newest messages, whatever its size: a message
// that far back is found, one further back is not (the lookup stopped),
// and messages with other peers do not count; the statement walks the
// conversation's index, never the archive.
func TestFindByMessageIDWindow(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	ctx := t.Context()
	const owner, romeo, tybalt = "juliet@capulet.example", "romeo@montague.example", "tybalt@capulet.example"
	if err := s.Accounts().Create(ctx, storage.Account{JID: owner}); err != nil {
		t.Fatal(err)
	}
	msg := func(with string, out bool, id string) storage.ArchiveMessage {
		return storage.ArchiveMessage{Owner: owner, With: with + "/r", Outgoing: out, MessageID: id, OriginID: "o-" + id,
			Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client' id='%s'><body>%s</body></message>", id, id)}
	}
	// The target, then findWindow-1 more of the conversation (both
	// directions) and as many with another peer, interleaved.
	msgs := []storage.ArchiveMessage{msg(romeo, false, "target")}
	for i := range findWindow - 1 {
		msgs = append(msgs, msg(romeo, i%2 == 0, fmt.Sprint("r", i)), msg(tybalt, false, fmt.Sprint("t", i)))
	}
	if err := s.Archive().Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"target", "o-target"} {
		got, err := s.Archive().FindByMessageID(ctx, owner, romeo, false, id)
		if err != nil || got.Seq != msgs[0].Seq {
			t.Fatalf("FindByMessageID(%q) as the %d-th newest = %d, %v; want %d", id, findWindow, got.Seq, err, msgs[0].Seq)
		}
	}
	if _, err := s.Archive().FindByMessageID(ctx, owner, romeo, true, "target"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("FindByMessageID(target, wrong direction) = %v", err)
	}
	// One more message of the conversation pushes the target out.
	if err := s.Archive().Append(ctx, []storage.ArchiveMessage{msg(romeo, true, "last")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"target", "o-target", "not-there"} {
		if m, err := s.Archive().FindByMessageID(ctx, owner, romeo, false, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("FindByMessageID(%q) beyond the window = %d, %v; want ErrNotFound", id, m.Seq, err)
		}
	}
	if got, err := s.Archive().FindByMessageID(ctx, owner, romeo, true, "last"); err != nil || got.MessageID != "last" {
		t.Errorf("FindByMessageID(last) = %+v, %v", got, err)
	}
	// The plan: the conversation's index range, bounded below by an
	// index-only read; no scan of the table or of an owner's whole range.
	rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+findSQL, owner, romeo, findWindow-1, false, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	p := strings.Join(plan, "\n")
	if strings.Contains(p, "SCAN") || strings.Count(p, "archive_by_with (owner=? AND with_bare=?") != 2 {
		t.Errorf("plan:\n%s", p)
	}
}
