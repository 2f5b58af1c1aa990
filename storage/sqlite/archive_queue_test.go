package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

func queueMsg(owner string, i int) []storage.ArchiveMessage {
	return []storage.ArchiveMessage{{Owner: owner, With: "romeo@montague.example/orchard", MessageID: fmt.Sprint(i),
		Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client' id='%d'><body>%d</body></message>", i, i)}}
}

// TestArchiveEnqueueBeforeCommit: Enqueue returns with Seq and Stamp set
// while no commit can happen; a read for the owner waits for the commit
// instead of answering without the message; the channel yields once the
// commit is done.
func TestArchiveEnqueueBeforeCommit(t *testing.T) {
	s, _ := openTemp(t)
	defer mustClose(t, s)
	ctx := t.Context()
	const owner, other = "juliet@capulet.example", "nurse@capulet.example"
	for _, u := range []string{owner, other} {
		if err := s.Accounts().Create(ctx, storage.Account{JID: u}); err != nil {
			t.Fatal(err)
		}
	}
	a := s.Archive()
	release := HoldArchiveCommits(s.Archive())
	var msgs [][]storage.ArchiveMessage
	var chans []<-chan error
	for i := range 3 {
		m := queueMsg(owner, i)
		chans = append(chans, a.Enqueue(ctx, m))
		if m[0].Seq == 0 || m[0].Stamp.IsZero() || (i > 0 && m[0].Seq <= msgs[i-1][0].Seq) {
			t.Fatalf("Enqueue %d returned Seq %d Stamp %v", i, m[0].Seq, m[0].Stamp)
		}
		msgs = append(msgs, m)
	}
	if n, b := ArchiveQueued(s.Archive()); n != 3 || b == 0 {
		t.Errorf("queued %d messages, %d bytes; want 3 and their bytes", n, b)
	}
	// Nothing can have been committed: the writer is held.
	for i, ch := range chans {
		select {
		case err := <-ch:
			t.Fatalf("Enqueue %d yielded %v while commits were held", i, err)
		default:
		}
	}
	// Another owner's reads do not wait.
	if p, err := a.Query(ctx, storage.ArchiveQuery{Owner: other, Max: 10}); err != nil || len(p.Messages) != 0 {
		t.Fatalf("Query(other owner) = %+v, %v", p, err)
	}
	// The owner's read waits for the commit and then sees every message.
	type answer struct {
		p   storage.ArchivePage
		err error
	}
	got := make(chan answer, 1)
	go func() {
		p, err := a.Query(ctx, storage.ArchiveQuery{Owner: owner, After: msgs[0][0].Seq, Max: 10})
		got <- answer{p, err}
	}()
	release()
	ans := <-got
	if ans.err != nil || len(ans.p.Messages) != 2 || ans.p.Messages[1].Seq != msgs[2][0].Seq {
		t.Fatalf("Query after-id during the hold = %+v, %v; want the 2 later messages", ans.p, ans.err)
	}
	for i, ch := range chans {
		if err := <-ch; err != nil {
			t.Errorf("Enqueue %d: %v", i, err)
		}
	}
	if n, b := ArchiveQueued(s.Archive()); n != 0 || b != 0 {
		t.Errorf("after the commits %d messages, %d bytes still counted", n, b)
	}
	// A read whose context ends while it waits returns the context's error.
	release = HoldArchiveCommits(s.Archive())
	ch := a.Enqueue(ctx, queueMsg(owner, 9))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Get(canceled, owner, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context while the owner's write waits = %v", err)
	}
	release()
	if err := <-ch; err != nil {
		t.Error(err)
	}
}

// TestArchiveBackpressure: with commits held, Enqueue takes messages up to
// the bound (messages, then bytes) and blocks there; nothing more is held in
// memory; releasing the writer stores every message, once, in order.
func TestArchiveBackpressure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		msgs  int
		bytes int64
		want  int // messages taken before Enqueue blocks
	}{
		{"msgs", 10, 0, 10},
		{"bytes", 0, 5 * int64(len(queueMsg("juliet@capulet.example", 10)[0].Stanza)), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			defer mustClose(t, s)
			ctx := t.Context()
			const owner = "juliet@capulet.example"
			if err := s.Accounts().Create(ctx, storage.Account{JID: owner}); err != nil {
				t.Fatal(err)
			}
			a := s.Archive()
			a.SetQueueLimit(tc.msgs, tc.bytes)
			release := HoldArchiveCommits(s.Archive())
			full := ArchiveQueueFull(s.Archive())
			const total = 40
			taken := make(chan int, total)
			errs := make(chan error, total)
			go func() {
				for i := 10; i < 10+total; i++ { // same stanza size for every i
					ch := a.Enqueue(ctx, queueMsg(owner, i))
					taken <- i
					go func() { errs <- <-ch }()
				}
			}()
			<-full
			// The sender is blocked in its next Enqueue: exactly the bound was taken.
			if n, _ := ArchiveQueued(s.Archive()); n != tc.want {
				t.Errorf("queued %d messages at the bound, want %d", n, tc.want)
			}
			if len(taken) != tc.want {
				t.Errorf("%d Enqueue calls returned at the bound, want %d", len(taken), tc.want)
			}
			release()
			for range total {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			p, err := a.Query(ctx, storage.ArchiveQuery{Owner: owner, Max: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Messages) != total {
				t.Fatalf("%d messages stored, want %d", len(p.Messages), total)
			}
			for i, m := range p.Messages {
				if m.MessageID != fmt.Sprint(10+i) {
					t.Errorf("message %d is %s", i, m.MessageID)
				}
			}
		})
	}
}

// TestArchiveCloseFlushes: Close commits what Enqueue took before it
// closes the database; nothing queued is lost.
func TestArchiveCloseFlushes(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	const owner = "juliet@capulet.example"
	if err := s.Accounts().Create(ctx, storage.Account{JID: owner}); err != nil {
		t.Fatal(err)
	}
	var chans []<-chan error
	for i := range 200 {
		chans = append(chans, s.Archive().Enqueue(ctx, queueMsg(owner, i)))
	}
	mustClose(t, s)
	for i, ch := range chans {
		if err := <-ch; err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: owner, Max: 1000})
	if err != nil || len(p.Messages) != 200 {
		t.Fatalf("after Close and Open: %d messages, %v; want 200", len(p.Messages), err)
	}
}
