package sqlite

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// BenchmarkRosterRingChanges is the storage side of a subscription ring:
// 5,000 owners, each changing its items for its 20 ring neighbours in turn
// (a read-modify-write of one item per change, as a subscription stanza
// makes), 512 changes at once. ItemPut reads the item on the read pool and
// then writes it (what the roster module did before Update); Update reads
// and writes it in the writer's shared transaction.
func BenchmarkRosterRingChanges(b *testing.B) {
	const owners, contacts = 5000, 20
	users := make([]string, owners)
	for i := range users {
		users[i] = fmt.Sprintf("user%d@bench.example", 21001+i)
	}
	pick := func(i int64) (string, string) {
		o := int(i % owners)
		d := int(i/owners)%contacts - contacts/2
		if d >= 0 {
			d++
		}
		return users[o], users[(o+d+owners)%owners]
	}
	next := func(cur storage.RosterItem, found bool) storage.RosterItem {
		switch {
		case !found || cur.Subscription == storage.SubNone:
			cur.Subscription, cur.Ask = storage.SubTo, false
		case cur.Subscription == storage.SubTo:
			cur.Subscription = storage.SubBoth
		default:
			cur.Subscription, cur.Ask = storage.SubNone, true
		}
		return cur
	}
	for _, mode := range []string{"ItemPut", "Update"} {
		b.Run(mode, func(b *testing.B) {
			s := benchStore(b, "NORMAL", users...)
			ctx := b.Context()
			var n atomic.Int64
			b.SetParallelism(256)
			done := measure(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					owner, contact := pick(n.Add(1))
					var err error
					if mode == "Update" {
						_, err = s.roster.Update(ctx, owner, contact, func(cur storage.RosterItem, found bool, _ storage.RosterCounts) (storage.RosterItem, storage.RosterOp, error) {
							return next(cur, found), storage.RosterPut, nil
						})
					} else {
						cur, gerr := s.roster.Item(ctx, owner, contact)
						found := gerr == nil
						if gerr != nil && !errors.Is(gerr, storage.ErrNotFound) {
							b.Error(gerr)
							return
						}
						if !found {
							cur = storage.RosterItem{JID: contact}
						}
						_, err = s.roster.Put(ctx, owner, next(cur, found))
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			done()
		})
	}
}
