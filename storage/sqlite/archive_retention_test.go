package sqlite

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// TestArchiveRetentionSweep: DeleteBefore over many owners, with rows in
// both the indexed archive and the tail and more than two chunks to
// delete, deletes exactly the rows stamped before the cut and nothing
// else; it takes turns with appends in the archive writer's queue (held
// writer: the sweep waits; an append queued after it still commits and
// stays).
func TestArchiveRetentionSweep(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	ctx := t.Context()
	const owners = 40
	user := func(k int) string { return fmt.Sprintf("user%d@example.com", k) }
	for k := range owners {
		if err := s.Accounts().Create(ctx, storage.Account{JID: user(k)}); err != nil {
			t.Fatal(err)
		}
	}
	a := s.Archive()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	total := 2*deleteChunk + 3000
	var all []storage.ArchiveMessage
	add := func(from, to int) {
		t.Helper()
		for i := from; i < to; i += 4096 {
			var batch []storage.ArchiveMessage
			for j := i; j < min(i+4096, to); j++ {
				batch = append(batch, storage.ArchiveMessage{Owner: user(j * 7 % owners), With: fmt.Sprintf("c%d@remote.example/r", j%13),
					Outgoing: j%2 == 0, MessageID: fmt.Sprint(j), Stamp: base.Add(time.Duration(j) * time.Millisecond),
					Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client' id='%d'><body>m%d</body></message>", j, j)})
			}
			if err := a.Append(ctx, batch); err != nil {
				t.Fatal(err)
			}
			all = append(all, batch...)
		}
	}
	// Most rows merged into the indexed archive, the newest in the tail;
	// the cut falls among the tail's rows.
	add(0, total-2000)
	if err := a.(*archive).MergeTail(ctx); err != nil {
		t.Fatal(err)
	}
	add(total-2000, total)
	cutAt := total - 1000
	cut := all[cutAt].Stamp
	if all[cutAt-1].Stamp.Equal(cut) || tailCount(t, s, user(cutAt*7%owners)) == 0 {
		t.Fatal("bad setup")
	}

	release := HoldArchiveCommits(a)
	queued := ArchiveSweepQueued(a)
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := a.DeleteBefore(ctx, cut)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		release()
		t.Fatalf("DeleteBefore returned (%d, %v) while the archive writer was held: it does not take turns with appends", r.n, r.err)
	case <-queued:
	}
	late := []storage.ArchiveMessage{{Owner: user(0), With: "late@remote.example", MessageID: "late", Stanza: []byte("<message xmlns='jabber:client' id='late'/>")}}
	res := a.Enqueue(ctx, late)
	release()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n != int64(cutAt) {
		t.Fatalf("DeleteBefore = %d, %v; want %d", r.n, r.err, cutAt)
	}
	want := map[string][]int64{}
	for _, m := range append(all[cutAt:], late...) {
		want[m.Owner] = append(want[m.Owner], m.Seq)
	}
	for k := range owners {
		var got []int64
		q := storage.ArchiveQuery{Owner: user(k), Max: 5000}
		for {
			p, err := a.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, seqsOf(p)...)
			if p.Complete || len(p.Messages) == 0 {
				break
			}
			q.PageAfter = got[len(got)-1]
		}
		if !slices.Equal(got, want[user(k)]) {
			t.Errorf("%s holds %d rows after the sweep, want %d (first %v, want %v)", user(k), len(got), len(want[user(k)]), got[:min(3, len(got))], want[user(k)][:min(3, len(want[user(k)]))])
		}
	}
	var left int
	if err := s.r.QueryRow("SELECT (SELECT count(*) FROM archive) + (SELECT count(*) FROM archive_tail)").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != total-cutAt+1 {
		t.Errorf("%d rows left, want %d", left, total-cutAt+1)
	}
}
