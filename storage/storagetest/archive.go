package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

func testArchive(t *testing.T, open opener) {
	const (
		owner = "juliet@capulet.example"
		other = "nurse@capulet.example"
		romeo = "romeo@montague.example"
	)
	msg := func(o string, i int, with string, out bool) storage.ArchiveMessage {
		return storage.ArchiveMessage{
			Owner:     o,
			Stamp:     aTime(time.Duration(i) * time.Second),
			With:      with,
			Outgoing:  out,
			MessageID: fmt.Sprintf("m%d", i),
			OriginID:  fmt.Sprintf("o%d", i),
			Stanza:    fmt.Appendf(nil, "<message xmlns='jabber:client' id='m%d'><body>%d</body></message>", i, i),
		}
	}
	appendAll := func(t *testing.T, s storage.Store, ms ...storage.ArchiveMessage) []storage.ArchiveMessage {
		t.Helper()
		noErr(t, "Append", s.Archive().Append(t.Context(), ms))
		return ms
	}
	seqs := func(ms []storage.ArchiveMessage) []int64 {
		out := make([]int64, len(ms))
		for i, m := range ms {
			out[i] = m.Seq
		}
		return out
	}
	query := func(t *testing.T, s storage.Store, q storage.ArchiveQuery) storage.ArchivePage {
		t.Helper()
		p, err := s.Archive().Query(t.Context(), q)
		noErr(t, "Query", err)
		for i := 1; i < len(p.Messages); i++ {
			if p.Messages[i].Seq <= p.Messages[i-1].Seq {
				t.Fatalf("Query returned Seq %d after %d: want increasing", p.Messages[i].Seq, p.Messages[i-1].Seq)
			}
		}
		return p
	}
	sameMsg := func(t *testing.T, what string, got, want storage.ArchiveMessage) {
		t.Helper()
		if got.Seq != want.Seq || got.Owner != want.Owner || got.With != want.With || got.Outgoing != want.Outgoing ||
			got.MessageID != want.MessageID || got.OriginID != want.OriginID || !bytes.Equal(got.Stanza, want.Stanza) {
			t.Errorf("%s = %+v\nwant %+v", what, got, want)
		}
		sameTime(t, what+" Stamp", got.Stamp, want.Stamp)
		sameTime(t, what+" Retracted", got.Retracted, want.Retracted)
	}

	t.Run("Empty", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		for _, o := range []string{owner, "nobody@capulet.example"} {
			p := query(t, s, storage.ArchiveQuery{Owner: o, Max: 10, CountLimit: 100})
			if len(p.Messages) != 0 || !p.Complete || p.Count != 0 || p.Index != -1 {
				t.Errorf("Query(%s) on an empty archive = %+v; want no messages, complete, count 0, index -1", o, p)
			}
			_, err := s.Archive().Get(ctx, o, 1)
			isErr(t, "Get(empty)", err, storage.ErrNotFound)
			prefs, err := s.Archive().Prefs(ctx, o)
			if err != nil || prefs.Default != "" || len(prefs.Always) != 0 || len(prefs.Never) != 0 {
				t.Errorf("Prefs(%s) = %+v, %v; want the zero value", o, prefs, err)
			}
			n, err := s.Archive().DeleteBefore(ctx, time.Now())
			if err != nil || n != 0 {
				t.Errorf("DeleteBefore(empty) = %d, %v", n, err)
			}
		}
		noErr(t, "Append(nothing)", s.Archive().Append(ctx, nil))
	})

	t.Run("AppendGet", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		in := []storage.ArchiveMessage{
			msg(owner, 0, romeo+"/orchard", false),
			msg(owner, 1, romeo, true),
			msg(owner, 2, "capulet.example", false),
		}
		in[2].Stanza = allBytes()
		in[2].MessageID, in[2].OriginID = "", ""
		got := appendAll(t, s, in...)
		for i, m := range got {
			if m.Seq == 0 || (i > 0 && m.Seq <= got[i-1].Seq) {
				t.Errorf("Seq %d = %d, want increasing and non-zero", i, m.Seq)
			}
			if m.Stamp.Location() != time.UTC {
				t.Errorf("Stamp %v not in UTC", m.Stamp)
			}
			sameTime(t, fmt.Sprint("Stamp ", i), m.Stamp, aTime(time.Duration(i)*time.Second))
			back, err := s.Archive().Get(ctx, owner, m.Seq)
			noErr(t, "Get", err)
			sameMsg(t, fmt.Sprint("Get ", i), back, m)
			_, err = s.Archive().Get(ctx, other, m.Seq)
			isErr(t, "Get(other owner)", err, storage.ErrNotFound)
		}
	})

	t.Run("Stamps", func(t *testing.T) {
		// Zero means now; a stamp not after the newest moves just after it;
		// Seq strictly increases whatever the stamps.
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		before := time.Now()
		now := appendAll(t, s, storage.ArchiveMessage{Owner: owner, With: romeo, Stanza: []byte("<message/>")})[0]
		after := time.Now()
		if now.Stamp.Before(before.Add(-time.Millisecond)) || now.Stamp.After(after.Add(time.Millisecond)) {
			t.Errorf("zero Stamp stored as %v, want between %v and %v", now.Stamp, before, after)
		}
		old := appendAll(t, s, storage.ArchiveMessage{Owner: owner, With: romeo, Stamp: aTime(0), Stanza: []byte("<message/>")})[0]
		if old.Seq <= now.Seq || old.Stamp.Before(now.Stamp) {
			t.Errorf("an older stamp gave Seq %d Stamp %v after Seq %d Stamp %v; want both after", old.Seq, old.Stamp, now.Seq, now.Stamp)
		}
		if old.Stamp.Sub(now.Stamp) > time.Millisecond {
			t.Errorf("an older stamp moved to %v, want just after %v", old.Stamp, now.Stamp)
		}
		future := time.Now().Add(time.Hour)
		f := appendAll(t, s, storage.ArchiveMessage{Owner: owner, With: romeo, Stamp: future, Stanza: []byte("<message/>")})[0]
		sameTime(t, "future Stamp", f.Stamp, future)
		back, err := s.Archive().Get(ctx, owner, old.Seq)
		noErr(t, "Get", err)
		if !back.Stamp.Equal(old.Stamp) {
			t.Errorf("Get Stamp %v, Append reported %v", back.Stamp, old.Stamp)
		}
	})

	t.Run("UnknownOwner", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		isErr(t, "Append(no account)", s.Archive().Append(ctx, []storage.ArchiveMessage{msg("nobody@capulet.example", 0, romeo, false)}), storage.ErrNotFound)
		// All or none: one bad owner in a call stores nothing of it.
		ms := []storage.ArchiveMessage{msg(owner, 1, romeo, false), msg("nobody@capulet.example", 2, romeo, false), msg(owner, 3, romeo, false)}
		isErr(t, "Append(mixed)", s.Archive().Append(ctx, ms), storage.ErrNotFound)
		if p := query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10}); len(p.Messages) != 0 {
			t.Errorf("a failed Append stored %d messages", len(p.Messages))
		}
		isErr(t, "SetPrefs(no account)", s.Archive().SetPrefs(ctx, "nobody@capulet.example", storage.ArchivePrefs{Default: "always"}), storage.ErrNotFound)
		// The store still works.
		appendAll(t, s, msg(owner, 4, romeo, false))
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := open(t)
		create(t, s, owner)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := s.Archive().Append(ctx, []storage.ArchiveMessage{msg(owner, 0, romeo, false)})
		isErr(t, "Append(canceled)", err, context.Canceled)
		if p := query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10}); len(p.Messages) != 0 {
			t.Errorf("a canceled Append stored %d messages", len(p.Messages))
		}
	})

	t.Run("Paging", func(t *testing.T) {
		s := open(t)
		create(t, s, owner, other)
		const n = 250
		var all []storage.ArchiveMessage
		for i := range n {
			all = append(all, msg(owner, i, romeo, i%2 == 0))
			if i%10 == 0 {
				appendAll(t, s, msg(other, i, romeo, false)) // interleaved, never seen below
			}
		}
		appendAll(t, s, all...)
		want := seqs(all)

		// Forward with PageAfter.
		var got []int64
		after, pages := int64(0), 0
		for {
			p := query(t, s, storage.ArchiveQuery{Owner: owner, PageAfter: after, Max: 40, CountLimit: 1000})
			pages++
			if p.Count != n {
				t.Errorf("forward page %d: Count %d, want %d", pages, p.Count, n)
			}
			if len(p.Messages) > 0 && p.Index != len(got) {
				t.Errorf("forward page %d: Index %d, want %d", pages, p.Index, len(got))
			}
			got = append(got, seqs(p.Messages)...)
			if p.Complete {
				break
			}
			if len(p.Messages) != 40 || pages > n {
				t.Fatalf("incomplete page of %d", len(p.Messages))
			}
			after = p.Messages[len(p.Messages)-1].Seq
		}
		if !slices.Equal(got, want) || pages != 7 {
			t.Errorf("forward paging: %d pages, %d messages; want 7 pages, every message once in order", pages, len(got))
		}

		// Backward from the end with PageBefore.
		got, pages = nil, 0
		before := int64(0)
		for {
			p := query(t, s, storage.ArchiveQuery{Owner: owner, PageBefore: before, FromEnd: true, Max: 40, CountLimit: 1000})
			pages++
			if p.Count != n || (len(p.Messages) > 0 && p.Index != n-len(got)-len(p.Messages)) {
				t.Errorf("backward page %d: Index %d of %d with %d messages", pages, p.Index, p.Count, len(p.Messages))
			}
			got = append(seqs(p.Messages), got...)
			if p.Complete {
				break
			}
			if len(p.Messages) != 40 || pages > n {
				t.Fatalf("incomplete page of %d", len(p.Messages))
			}
			before = p.Messages[0].Seq
		}
		if !slices.Equal(got, want) || pages != 7 {
			t.Errorf("backward paging: %d pages, %d messages; want 7 pages, every message once in order", pages, len(got))
		}

		// An exact last page is complete; an empty one too.
		p := query(t, s, storage.ArchiveQuery{Owner: owner, PageAfter: want[n-41], Max: 40})
		if len(p.Messages) != 40 || !p.Complete {
			t.Errorf("last 40 after: %d messages, complete %v; want 40, complete", len(p.Messages), p.Complete)
		}
		p = query(t, s, storage.ArchiveQuery{Owner: owner, PageAfter: want[n-1], Max: 40})
		if len(p.Messages) != 0 || !p.Complete {
			t.Errorf("after the newest: %d messages, complete %v", len(p.Messages), p.Complete)
		}

		// Selection bounds change the count; cursors move within it.
		p = query(t, s, storage.ArchiveQuery{Owner: owner, After: want[99], Before: want[200], PageAfter: want[149], Max: 10, CountLimit: n})
		if !slices.Equal(seqs(p.Messages), want[150:160]) || p.Count != 100 || p.Index != 50 || p.Complete {
			t.Errorf("After/Before with PageAfter: %v count %d index %d complete %v", seqs(p.Messages), p.Count, p.Index, p.Complete)
		}
		p = query(t, s, storage.ArchiveQuery{Owner: owner, After: want[99], Before: want[200], PageBefore: want[105], FromEnd: true, Max: 10, CountLimit: n})
		if !slices.Equal(seqs(p.Messages), want[100:105]) || p.Count != 100 || p.Index != 0 || !p.Complete {
			t.Errorf("After/Before with PageBefore: %v count %d index %d complete %v", seqs(p.Messages), p.Count, p.Index, p.Complete)
		}
		// A cursor outside the selection still has to exist.
		_, err := s.Archive().Query(t.Context(), storage.ArchiveQuery{Owner: owner, After: want[99], PageBefore: want[10] + 1, Max: 10})
		if want[10]+1 != want[11] {
			isErr(t, "PageBefore not in the archive", err, storage.ErrNotFound)
		}

		// Offset, Index, Max 0 and the count limit.
		p = query(t, s, storage.ArchiveQuery{Owner: owner, Offset: 100, Max: 10, CountLimit: n})
		if !slices.Equal(seqs(p.Messages), want[100:110]) || p.Index != 100 || p.Count != n || p.Complete {
			t.Errorf("Offset 100: %v index %d count %d complete %v", seqs(p.Messages), p.Index, p.Count, p.Complete)
		}
		p = query(t, s, storage.ArchiveQuery{Owner: owner, Offset: 5, FromEnd: true, Max: 10, CountLimit: n})
		if !slices.Equal(seqs(p.Messages), want[n-15:n-5]) || p.Index != n-15 {
			t.Errorf("Offset 5 from the end: %v index %d", seqs(p.Messages), p.Index)
		}
		p = query(t, s, storage.ArchiveQuery{Owner: owner, Max: 0, CountLimit: n})
		if len(p.Messages) != 0 || p.Count != n || p.Complete {
			t.Errorf("Max 0: %d messages count %d complete %v; want none, %d, not complete", len(p.Messages), p.Count, p.Complete, n)
		}
		p = query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10, CountLimit: n - 1})
		if p.Count != -1 || p.Index != -1 {
			t.Errorf("over the count limit: count %d index %d, want -1 -1", p.Count, p.Index)
		}
		p = query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10})
		if p.Count != -1 || p.Index != -1 {
			t.Errorf("no count limit: count %d index %d, want -1 -1", p.Count, p.Index)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		withs := []string{romeo + "/orchard", romeo, romeo + "/balcony", "tybalt@capulet.example/x", owner, "montague.example"}
		var all []storage.ArchiveMessage
		for i := range 30 {
			all = append(all, msg(owner, i, withs[i%len(withs)], i%3 == 0))
		}
		appendAll(t, s, all...)
		foreign := appendAll(t, s, msg(other, 100, romeo, false))[0]
		pick := func(keep func(i int, m storage.ArchiveMessage) bool) []int64 {
			var out []int64
			for i, m := range all {
				if keep(i, m) {
					out = append(out, m.Seq)
				}
			}
			return out
		}
		check := func(what string, q storage.ArchiveQuery, want []int64) {
			t.Helper()
			q.Owner, q.Max = owner, 1000
			q.CountLimit = 1000
			p := query(t, s, q)
			if got := seqs(p.Messages); !slices.Equal(got, want) || p.Count != len(want) || !p.Complete {
				t.Errorf("%s: got %v (count %d), want %v", what, got, p.Count, want)
			}
		}
		check("with bare", storage.ArchiveQuery{With: romeo}, pick(func(i int, _ storage.ArchiveMessage) bool { return i%6 <= 2 }))
		check("with full", storage.ArchiveQuery{With: romeo + "/orchard"}, pick(func(i int, _ storage.ArchiveMessage) bool { return i%6 == 0 }))
		check("with the owner", storage.ArchiveQuery{With: owner}, pick(func(i int, _ storage.ArchiveMessage) bool { return i%6 == 4 }))
		check("with a domain", storage.ArchiveQuery{With: "montague.example"}, pick(func(i int, _ storage.ArchiveMessage) bool { return i%6 == 5 }))
		check("with nobody", storage.ArchiveQuery{With: "nobody@x"}, nil)
		check("start and end inclusive", storage.ArchiveQuery{Start: all[5].Stamp, End: all[9].Stamp}, seqs(all[5:10]))
		check("start only", storage.ArchiveQuery{Start: all[25].Stamp.Add(-time.Millisecond)}, seqs(all[25:]))
		check("end only", storage.ArchiveQuery{End: all[3].Stamp.Add(time.Millisecond)}, seqs(all[:4]))
		check("start after end", storage.ArchiveQuery{Start: all[9].Stamp, End: all[5].Stamp}, nil)
		check("after and before", storage.ArchiveQuery{After: all[10].Seq, Before: all[15].Seq}, seqs(all[11:15]))
		check("with and time", storage.ArchiveQuery{With: romeo, Start: all[6].Stamp, End: all[14].Stamp},
			pick(func(i int, _ storage.ArchiveMessage) bool { return i >= 6 && i <= 14 && i%6 <= 2 }))
		check("ids", storage.ArchiveQuery{IDs: []int64{all[7].Seq, all[2].Seq, all[7].Seq}}, []int64{all[2].Seq, all[7].Seq})
		check("ids and with", storage.ArchiveQuery{IDs: []int64{all[0].Seq, all[3].Seq}, With: romeo + "/orchard"}, []int64{all[0].Seq})
		check("empty ids", storage.ArchiveQuery{IDs: []int64{}}, nil)

		for what, q := range map[string]storage.ArchiveQuery{
			"after unknown":       {After: all[29].Seq + 1000},
			"before unknown":      {Before: 12345},
			"page after unknown":  {PageAfter: all[29].Seq + 1000},
			"page before foreign": {PageBefore: foreign.Seq},
			"after foreign":       {After: foreign.Seq},
			"ids with a foreign":  {IDs: []int64{all[1].Seq, foreign.Seq}},
		} {
			q.Owner, q.Max = owner, 10
			_, err := s.Archive().Query(ctx, q)
			isErr(t, what, err, storage.ErrNotFound)
		}
	})

	t.Run("FindByMessageID", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		a := msg(owner, 0, romeo+"/orchard", false)
		a.MessageID, a.OriginID = "same", "origin-a"
		b := msg(owner, 1, romeo+"/balcony", false)
		b.MessageID, b.OriginID = "same", ""
		c := msg(owner, 2, romeo, true)
		c.MessageID, c.OriginID = "mine", "origin-c"
		d := msg(owner, 3, "tybalt@capulet.example", false)
		d.MessageID = "same"
		ms := appendAll(t, s, a, b, c, d)
		for _, tc := range []struct {
			with string
			out  bool
			id   string
			want int // index in ms, -1: not found
		}{
			{romeo, false, "same", 1}, // the newest
			{romeo, false, "origin-a", 0},
			{romeo, true, "mine", 2},
			{romeo, true, "origin-c", 2},
			{romeo, false, "mine", -1}, // wrong direction
			{romeo, true, "same", -1},
			{"tybalt@capulet.example", false, "same", 3},
			{"tybalt@capulet.example", false, "origin-a", -1},
			{romeo, false, "", -1},
		} {
			got, err := s.Archive().FindByMessageID(ctx, owner, tc.with, tc.out, tc.id)
			if tc.want < 0 {
				isErr(t, fmt.Sprintf("FindByMessageID(%s, %v, %q)", tc.with, tc.out, tc.id), err, storage.ErrNotFound)
				continue
			}
			noErr(t, "FindByMessageID", err)
			sameMsg(t, fmt.Sprintf("FindByMessageID(%s, %v, %q)", tc.with, tc.out, tc.id), got, ms[tc.want])
		}
	})

	t.Run("Retract", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		ms := appendAll(t, s, msg(owner, 0, romeo, false), msg(owner, 1, romeo, false))
		tomb := []byte("<message xmlns='jabber:client' id='m0'><retracted xmlns='urn:xmpp:message-retract:1' id='r1' stamp='x'/></message>")
		at := aTime(time.Hour)
		noErr(t, "Retract", s.Archive().Retract(ctx, owner, ms[0].Seq, tomb, at))
		got, err := s.Archive().Get(ctx, owner, ms[0].Seq)
		noErr(t, "Get", err)
		want := ms[0]
		want.Stanza, want.Retracted = tomb, at
		sameMsg(t, "retracted message", got, want)
		p := query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10})
		if len(p.Messages) != 2 || !bytes.Equal(p.Messages[0].Stanza, tomb) || p.Messages[0].Retracted.IsZero() || !p.Messages[1].Retracted.IsZero() {
			t.Errorf("Query after Retract = %+v", p.Messages)
		}
		// Still found by its ids (a second retraction finds it again).
		if f, err := s.Archive().FindByMessageID(ctx, owner, romeo, false, "m0"); err != nil || f.Seq != ms[0].Seq {
			t.Errorf("FindByMessageID after Retract = %+v, %v", f, err)
		}
		isErr(t, "Retract(other owner)", s.Archive().Retract(ctx, other, ms[1].Seq, tomb, at), storage.ErrNotFound)
		isErr(t, "Retract(unknown)", s.Archive().Retract(ctx, owner, 42, tomb, at), storage.ErrNotFound)
	})

	t.Run("DeleteBefore", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		var ms []storage.ArchiveMessage
		for i := range 20 {
			o := owner
			if i%2 == 1 {
				o = other
			}
			ms = append(ms, msg(o, i, romeo, false))
		}
		appendAll(t, s, ms...)
		n, err := s.Archive().DeleteBefore(ctx, ms[12].Stamp)
		if err != nil || n != 12 {
			t.Errorf("DeleteBefore = %d, %v; want 12", n, err)
		}
		for i, m := range ms {
			_, err := s.Archive().Get(ctx, m.Owner, m.Seq)
			if i < 12 {
				isErr(t, fmt.Sprint("Get deleted ", i), err, storage.ErrNotFound)
			} else {
				noErr(t, fmt.Sprint("Get kept ", i), err)
			}
		}
		p := query(t, s, storage.ArchiveQuery{Owner: owner, Max: 100})
		if !slices.Equal(seqs(p.Messages), []int64{ms[12].Seq, ms[14].Seq, ms[16].Seq, ms[18].Seq}) {
			t.Errorf("after DeleteBefore the owner's archive holds %v", seqs(p.Messages))
		}
		// Seqs are never reused: the next one is after every earlier one.
		next := appendAll(t, s, msg(owner, 0, romeo, false))[0]
		if next.Seq <= ms[19].Seq {
			t.Errorf("Seq %d after deletions, want > %d", next.Seq, ms[19].Seq)
		}
	})

	t.Run("Prefs", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		p := storage.ArchivePrefs{Default: "roster", Always: []string{romeo, "a@x/res", romeo}, Never: []string{"z@x", "b@x"}}
		noErr(t, "SetPrefs", s.Archive().SetPrefs(ctx, owner, p))
		got, err := s.Archive().Prefs(ctx, owner)
		noErr(t, "Prefs", err)
		if got.Default != "roster" || !slices.Equal(got.Always, []string{"a@x/res", romeo}) || !slices.Equal(got.Never, []string{"b@x", "z@x"}) {
			t.Errorf("Prefs = %+v, want sorted unique lists", got)
		}
		if o, _ := s.Archive().Prefs(ctx, other); o.Default != "" || len(o.Always)+len(o.Never) != 0 {
			t.Errorf("other's Prefs = %+v, want zero", o)
		}
		noErr(t, "SetPrefs(replace)", s.Archive().SetPrefs(ctx, owner, storage.ArchivePrefs{Default: "never"}))
		got, err = s.Archive().Prefs(ctx, owner)
		if err != nil || got.Default != "never" || len(got.Always)+len(got.Never) != 0 {
			t.Errorf("Prefs after replace = %+v, %v", got, err)
		}
		if err := s.Archive().SetPrefs(ctx, owner, storage.ArchivePrefs{Default: "sometimes"}); err == nil {
			t.Error("SetPrefs(default sometimes) succeeded")
		}
	})

	t.Run("DeleteAccount", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		ms := appendAll(t, s, msg(owner, 0, other, false), msg(other, 1, owner, true))
		noErr(t, "SetPrefs", s.Archive().SetPrefs(ctx, owner, storage.ArchivePrefs{Default: "never"}))
		noErr(t, "Delete", s.Accounts().Delete(ctx, owner))
		_, err := s.Archive().Get(ctx, owner, ms[0].Seq)
		isErr(t, "Get after Delete", err, storage.ErrNotFound)
		if _, err := s.Archive().Get(ctx, other, ms[1].Seq); err != nil {
			t.Errorf("the other account's archive lost its message: %v", err)
		}
		noErr(t, "re-Create", s.Accounts().Create(ctx, storage.Account{JID: owner}))
		if p, _ := s.Archive().Prefs(ctx, owner); p.Default != "" {
			t.Errorf("Prefs survived the account: %+v", p)
		}
		if p := query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10}); len(p.Messages) != 0 {
			t.Errorf("archive survived the account: %d messages", len(p.Messages))
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Appenders racing (group commit): every message is stored once,
		// Seqs are unique, and each caller's messages keep its order.
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		const writers, each = 16, 40
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[int64]string{}
		var errs []error
		for w := range writers {
			wg.Go(func() {
				var prev int64
				for i := range each {
					o := owner
					if w%2 == 1 {
						o = other
					}
					m := []storage.ArchiveMessage{{Owner: o, With: romeo, MessageID: fmt.Sprintf("%d-%d", w, i), Stanza: []byte("<message/>")}}
					if i%5 == 0 { // some calls carry two messages
						m = append(m, storage.ArchiveMessage{Owner: o, With: romeo, MessageID: fmt.Sprintf("%d-%db", w, i), Stanza: []byte("<message/>")})
					}
					err := s.Archive().Append(ctx, m)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, x := range m {
						if _, dup := got[x.Seq]; dup || x.Seq <= prev {
							errs = append(errs, fmt.Errorf("seq %d of %s duplicate or not after %d", x.Seq, x.MessageID, prev))
						}
						got[x.Seq] = x.MessageID
						prev = x.Seq
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		total := 0
		for _, o := range []string{owner, other} {
			p := query(t, s, storage.ArchiveQuery{Owner: o, Max: 10000})
			for _, m := range p.Messages {
				if got[m.Seq] != m.MessageID {
					t.Errorf("stored Seq %d is %q, Append reported %q", m.Seq, m.MessageID, got[m.Seq])
				}
			}
			total += len(p.Messages)
		}
		if want := writers * (each + each/5); total != want || len(got) != want {
			t.Errorf("%d messages stored, %d reported; want %d", total, len(got), want)
		}
	})

	t.Run("Enqueue", func(t *testing.T) {
		// Enqueue assigns Seq and Stamp before it returns, in call order;
		// every later read for the owner sees the message, committed or
		// not; the channel yields the commit's result once.
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		a := s.Archive()
		var chans []<-chan error
		var all []storage.ArchiveMessage
		var prev storage.ArchiveMessage
		for i := range 60 {
			o := []string{owner, other}[i%2]
			m := []storage.ArchiveMessage{msg(o, i, romeo, i%3 == 0)}
			if i == 7 {
				m[0].Stamp = time.Time{} // now
			}
			chans = append(chans, a.Enqueue(ctx, m))
			got := m[0]
			if got.Seq <= prev.Seq || got.Stamp.Before(prev.Stamp) {
				t.Fatalf("Enqueue %d: Seq %d Stamp %v after Seq %d Stamp %v; want both increasing", i, got.Seq, got.Stamp, prev.Seq, prev.Stamp)
			}
			if got.Stamp.Location() != time.UTC {
				t.Errorf("Stamp %v not in UTC", got.Stamp)
			}
			prev = got
			all = append(all, got)
			// Read-your-writes, at once: each kind of read.
			switch i % 4 {
			case 0:
				back, err := a.Get(ctx, o, got.Seq)
				noErr(t, "Get after Enqueue", err)
				sameMsg(t, "Get after Enqueue", back, got)
			case 1:
				p, err := a.Query(ctx, storage.ArchiveQuery{Owner: o, Start: got.Stamp, Max: 10})
				if i > 1 {
					// after-id of an earlier message of o, then the new one.
					p, err = a.Query(ctx, storage.ArchiveQuery{Owner: o, After: all[i-2].Seq, Max: 10})
				}
				noErr(t, "Query after Enqueue", err)
				if len(p.Messages) != 1 || p.Messages[0].Seq != got.Seq {
					t.Errorf("Query after Enqueue %d: %d messages, want just Seq %d", i, len(p.Messages), got.Seq)
				}
				// And after-id of the new message itself: not item-not-found.
				p, err = a.Query(ctx, storage.ArchiveQuery{Owner: o, After: got.Seq, Max: 10})
				noErr(t, "Query after-id of the enqueued message", err)
				if len(p.Messages) != 0 || !p.Complete {
					t.Errorf("Query after the newest: %+v", p)
				}
			case 2:
				p := query(t, s, storage.ArchiveQuery{Owner: o, Max: 1, FromEnd: true})
				if len(p.Messages) != 1 || p.Messages[0].Seq != got.Seq {
					t.Errorf("newest of %s after Enqueue %d = %+v, want Seq %d", o, i, p.Messages, got.Seq)
				}
			case 3:
				back, err := a.FindByMessageID(ctx, o, romeo, got.Outgoing, got.MessageID)
				noErr(t, "FindByMessageID after Enqueue", err)
				if back.Seq != got.Seq {
					t.Errorf("FindByMessageID after Enqueue = Seq %d, want %d", back.Seq, got.Seq)
				}
			}
		}
		for i, ch := range chans {
			if err := <-ch; err != nil {
				t.Errorf("Enqueue %d: %v", i, err)
			}
			if err, ok := <-ch; ok || err != nil {
				t.Errorf("Enqueue %d: channel yielded a second value %v (open %v)", i, err, ok)
			}
		}
		for _, o := range []string{owner, other} {
			p := query(t, s, storage.ArchiveQuery{Owner: o, Max: 100})
			if len(p.Messages) != 30 {
				t.Errorf("%s holds %d messages, want 30", o, len(p.Messages))
			}
			for _, m := range p.Messages {
				i := slices.IndexFunc(all, func(x storage.ArchiveMessage) bool { return x.Seq == m.Seq })
				if i < 0 {
					t.Errorf("stored Seq %d was not reported by Enqueue", m.Seq)
					continue
				}
				sameMsg(t, "stored", m, all[i])
			}
		}
		// Retract right after Enqueue finds the message.
		m := []storage.ArchiveMessage{msg(owner, 100, romeo, false)}
		ch := a.Enqueue(ctx, m)
		noErr(t, "Retract after Enqueue", a.Retract(ctx, owner, m[0].Seq, []byte("<message/>"), time.Now()))
		noErr(t, "Enqueue then Retract", <-ch)
	})

	t.Run("EnqueueFailures", func(t *testing.T) {
		// A failed write is reported on the channel, stores nothing of
		// that call, and leaves the others and later ones alone.
		s, ctx := open(t), t.Context()
		create(t, s, owner)
		a := s.Archive()
		good1 := []storage.ArchiveMessage{msg(owner, 1, romeo, false)}
		bad := []storage.ArchiveMessage{msg(owner, 2, romeo, false), msg("nobody@capulet.example", 3, romeo, false)}
		good2 := []storage.ArchiveMessage{msg(owner, 4, romeo, false)}
		c1, cb, c2 := a.Enqueue(ctx, good1), a.Enqueue(ctx, bad), a.Enqueue(ctx, good2)
		noErr(t, "Enqueue(good)", <-c1)
		isErr(t, "Enqueue(unknown owner)", <-cb, storage.ErrNotFound)
		noErr(t, "Enqueue(good, after a bad one)", <-c2)
		p := query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10})
		if got, want := seqs(p.Messages), []int64{good1[0].Seq, good2[0].Seq}; !slices.Equal(got, want) {
			t.Errorf("stored %v, want %v", got, want)
		}
		if bad[0].Seq <= good1[0].Seq || good2[0].Seq <= bad[1].Seq {
			t.Errorf("Seqs %d, %d %d, %d: want increasing in call order", good1[0].Seq, bad[0].Seq, bad[1].Seq, good2[0].Seq)
		}
		// A failed Seq is a gap: an after-id naming it is item-not-found.
		_, err := a.Query(ctx, storage.ArchiveQuery{Owner: owner, After: bad[0].Seq, Max: 10})
		isErr(t, "Query(after a failed Seq)", err, storage.ErrNotFound)

		canceled, cancel := context.WithCancel(ctx)
		cancel()
		m := []storage.ArchiveMessage{msg(owner, 5, romeo, false)}
		isErr(t, "Enqueue(canceled)", <-a.Enqueue(canceled, m), context.Canceled)
		if m[0].Seq != 0 {
			t.Errorf("a rejected Enqueue set Seq %d", m[0].Seq)
		}
		r := []storage.ArchiveMessage{msg(owner, 6, romeo, false)}
		r[0].Retracted = time.Now()
		if err := <-a.Enqueue(ctx, r); err == nil {
			t.Error("Enqueue(Retracted set) succeeded")
		}
		noErr(t, "Enqueue(nothing)", <-a.Enqueue(ctx, nil))
		if p := query(t, s, storage.ArchiveQuery{Owner: owner, Max: 10}); len(p.Messages) != 2 {
			t.Errorf("rejected calls stored something: %d messages", len(p.Messages))
		}
	})

	t.Run("EnqueueBounded", func(t *testing.T) {
		// With a small queue bound, many concurrent callers all get their
		// messages stored, each once; a call larger than the bound passes.
		s, ctx := open(t), t.Context()
		create(t, s, owner, other)
		a := s.Archive()
		a.SetQueueLimit(3, 200)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for w := range 16 {
			wg.Go(func() {
				var chans []<-chan error
				for i := range 20 {
					m := []storage.ArchiveMessage{msg([]string{owner, other}[w%2], w*100+i, romeo, false)}
					chans = append(chans, a.Enqueue(ctx, m))
				}
				for _, ch := range chans {
					if err := <-ch; err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		big := make([]storage.ArchiveMessage, 10)
		for i := range big {
			big[i] = msg(owner, 5000+i, romeo, false)
		}
		noErr(t, "Enqueue(larger than the bound)", <-a.Enqueue(ctx, big))
		n := 0
		for _, o := range []string{owner, other} {
			n += len(query(t, s, storage.ArchiveQuery{Owner: o, Max: 1000}).Messages)
		}
		if n != 16*20+10 {
			t.Errorf("%d messages stored, want %d", n, 16*20+10)
		}
	})

	t.Run("ErrorsAreSentinels", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.Archive().FindByMessageID(ctx, owner, romeo, false, "x")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("FindByMessageID(no account) = %v", err)
		}
	})
}
