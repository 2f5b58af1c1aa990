//go:build unix

package mam_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/wire"
)

// TestLargePagesByBytes: a page of 50 results over messages of 50 KiB
// each (1.5 MB in all, against a session-buffer of 1 MiB) would end the
// session that asked for it. The page is cut at a quarter of the buffer,
// says complete='false', and paging on with <after/> (and backward with
// <before/>) yields every message exactly once, in order; the session
// lives on, with and without XEP-0198.
func TestLargePagesByBytes(t *testing.T) {
	for _, sm := range []bool{false, true} {
		t.Run(fmt.Sprintf("sm=%v", sm), func(t *testing.T) {
			e := start(t, func(c *conf.Config) {
				// The default proportions (4 MiB, 256 KiB) scaled down by 4.
				c.Limits.SessionBuffer = conf.MiB
				c.Limits.MaxStanzaSize = 64 * conf.KiB
				c.Limits.BytesPerSecond = 0
				c.Limits.BytesBurst = 2 * conf.MiB
			})
			a := online(t, e, "alice", "phone")
			const n = 30
			body := func(i int) string { return fmt.Sprintf("m%02d ", i) + strings.Repeat("x", 50<<10) }
			for i := range n {
				_ = a.Send(chat("bob@localhost", fmt.Sprintf("big%02d", i), body(i)))
			}
			syncWith(t, a)

			// A small receive buffer stands for a link slower than loopback.
			b, _ := e.LoginSlow("bob", pw, "laptop", 0)
			if sm {
				if _, err := b.EnableSM(timeout, false); err != nil {
					t.Fatal(err)
				}
			}
			check := func(what string, got []result) {
				t.Helper()
				if len(got) != n {
					t.Fatalf("%s: %d results, want %d", what, len(got), n)
				}
				for i, r := range got {
					if r.Msg.ID != fmt.Sprintf("big%02d", i) || r.Msg.Body == nil || *r.Msg.Body != body(i) {
						t.Fatalf("%s: result %d is %q", what, i, r.Msg.ID)
					}
				}
			}

			// Forward.
			var all []result
			pages := 0
			rsm := "<max>50</max>"
			for {
				rs, f, errSt := query(t, b, "", nil, rsm, "")
				if errSt != nil {
					t.Fatalf("page %d: %s", pages, errSt.Raw)
				}
				pages++
				if len(rs) == 0 || len(rs) > n {
					t.Fatalf("page %d: %d results", pages, len(rs))
				}
				if f.Set.First.Index == nil || *f.Set.First.Index != len(all) || f.Set.Last != rs[len(rs)-1].ID || f.Set.First.ID != rs[0].ID {
					t.Fatalf("page %d: fin %+v does not describe its %d results after %d", pages, f, len(rs), len(all))
				}
				all = append(all, rs...)
				if f.Complete == "true" {
					break
				}
				if f.Complete != "false" || pages > n {
					t.Fatalf("page %d: complete=%q", pages, f.Complete)
				}
				rsm = "<max>50</max><after>" + f.Set.Last + "</after>"
			}
			if pages < 2 {
				t.Fatalf("%d results of 50 KiB came in one page: the page was not bounded in bytes", len(all))
			}
			check("forward", all)

			// Backward from the end.
			var back []result
			rsm = "<max>50</max><before/>"
			for range n + 1 {
				rs, f, errSt := query(t, b, "", nil, rsm, "")
				if errSt != nil {
					t.Fatalf("backward: %s", errSt.Raw)
				}
				if len(rs) == 0 || f.Set.First.Index == nil || *f.Set.First.Index != n-len(back)-len(rs) {
					t.Fatalf("backward: %d results, fin %+v, after %d", len(rs), f, len(back))
				}
				back = append(rs, back...)
				if f.Complete == "true" {
					break
				}
				rsm = "<max>50</max><before>" + f.Set.First.ID + "</before>"
			}
			check("backward", back)

			// Queried before presence: no flood of what it could fetch, and
			// the session is alive.
			_ = b.Send("<presence/>")
			_ = b.Send("<iq type='get' id='alive'><ping xmlns='urn:xmpp:ping'/></iq>")
			for {
				st, err := b.Next(timeout)
				if err != nil {
					t.Fatalf("session ended: %v", err)
				}
				if st.ID == "alive" {
					break
				}
				if st.Kind == wire.KindMessage {
					t.Fatalf("flooded after paging through the archive: %.80s", st.Raw)
				}
			}
			if c, _ := e.Srv.Store.Offline().Count(t.Context(), "bob@localhost"); c != 0 {
				t.Errorf("offline storage holds %d", c)
			}
		})
	}
}
