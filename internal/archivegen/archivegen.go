// Package archivegen fills a store's message archive (storage.Archive) with
// a large, realistic set of messages, for benchmarks and capacity tests:
// cmd/archivegen writes into a server's data directory with it, and the
// big-archive benchmarks of storage/sqlite build their cached archives with
// it.
//
// The shape: Accounts accounts (PREFIX1 … PREFIXn at Domain, as the perf
// harness names them), of skewed activity (a Zipf law over the account
// number: account 1 is the busiest); each has its own contacts, most of them
// local accounts, some remote, chosen with a skewed law too (a few close
// contacts carry most of a user's messages); messages go both ways. A
// message between two local accounts is archived twice, as the server does:
// outgoing in the sender's archive, incoming in the recipient's. Bodies are
// text of 64 to 300 bytes (most short), with the id, origin-id, receipt
// request, chat marker and chat state clients send. Stamps are spread
// evenly (with jitter) from Start, Gap apart, so one month of the archive is
// a known slice of it.
//
// Everything is a function of (Seed, batch number): a fill can stop after
// any batch and be resumed from State.Rows with the same State, and gives
// the same archive as one run.
package archivegen

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// State describes a generated archive; it is what a resumed fill needs.
type State struct {
	Seed     uint64
	Accounts int    // accounts PREFIX1 … PREFIX<Accounts>
	Prefix   string // local part prefix ("user")
	Domain   string
	Start    time.Time     // stamp of row 0
	Gap      time.Duration // mean time between rows
	Batch    int           // rows per Append (one transaction); resumes start at a multiple
	Rows     int64         // rows written so far
}

// NewState is the State of an empty archive of the default shape whose
// rows, once there are rows of them, end about now.
func NewState(rows int64, span time.Duration) State {
	gap := span / time.Duration(max(rows, 1))
	return State{
		Seed:     1,
		Accounts: 5000,
		Prefix:   "user",
		Domain:   "bench.localhost",
		Start:    time.Now().Add(-span).UTC().Truncate(time.Second),
		Gap:      max(gap, time.Microsecond),
		Batch:    10000,
	}
}

// Account is the bare JID of account k (1 … Accounts); account 1 is the
// busiest, and activity falls with k.
func (s *State) Account(k int) string {
	return s.Prefix + strconv.Itoa(k) + "@" + s.Domain
}

// Stamp is the stamp of row i.
func (s *State) Stamp(i int64) time.Time {
	return s.Start.Add(time.Duration(i) * s.Gap)
}

// Contact is the bare JID of account k's c-th contact (c from 0; lower
// ones carry more of the account's messages).
func (s *State) Contact(k, c int) string {
	local, remote := newGen(s).contact(k, c)
	if remote != "" {
		return remote
	}
	return s.Account(local)
}

// BatchRows returns the rows of batch b (rows b×Batch … (b+1)×Batch-1) as Fill
// appends them, with their Stamps set.
func (s *State) BatchRows(b int64) []storage.ArchiveMessage {
	return newGen(s).batch(nil, b, b*int64(s.Batch), s.Batch)
}

// StatePath is where the state of the archive in the database at dbPath is
// kept.
func StatePath(dbPath string) string { return dbPath + ".archivegen.json" }

// LoadState reads the state kept for the database at dbPath; ok is false
// when there is none.
func LoadState(dbPath string) (s State, ok bool, err error) {
	b, err := os.ReadFile(StatePath(dbPath))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return s, false, fmt.Errorf("archivegen: %w", err)
	}
	return s, true, nil
}

// SaveState writes s as the state of the database at dbPath (atomically).
func SaveState(dbPath string, s State) error {
	b, _ := json.MarshalIndent(s, "", "\t")
	p := StatePath(dbPath)
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// Progress is reported after each batch.
type Progress struct {
	Rows    int64         // rows in the archive now
	Elapsed time.Duration // since Fill started
}

// CreateAccounts creates the accounts that do not exist yet (without
// credentials: `xmppd user add` or the perf harness's provisioning can set
// them before or after).
func CreateAccounts(ctx context.Context, st storage.Store, s *State) error {
	for k := 1; k <= s.Accounts; k++ {
		err := st.Accounts().Create(ctx, storage.Account{JID: s.Account(k)})
		if err != nil && !errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("archivegen: account %s: %w", s.Account(k), err)
		}
	}
	return nil
}

// Fill appends rows to st's archive until s.Rows reaches rows, one batch
// per Append, and calls progress (if not nil) after each. s.Rows is
// updated as batches commit, so a caller may save s and resume after an
// error. The accounts must exist (CreateAccounts).
func Fill(ctx context.Context, st storage.Store, s *State, rows int64, progress func(Progress)) error {
	if s.Batch <= 0 || s.Accounts < 2 || s.Gap <= 0 {
		return errors.New("archivegen: bad state")
	}
	if s.Rows%int64(s.Batch) != 0 {
		return fmt.Errorf("archivegen: %d rows written is not a multiple of the batch size %d", s.Rows, s.Batch)
	}
	t0 := time.Now()
	g := newGen(s)
	bulk, _ := st.(BulkAppender)
	// A bulk store takes several batches per call (a call is one
	// transaction; the batches, and so the rows, are the same).
	per := 1
	if bulk != nil {
		per = max(1, BulkRows/s.Batch)
	}
	buf := make([]storage.ArchiveMessage, 0, per*s.Batch+1)
	for s.Rows < rows {
		buf = buf[:0]
		var n int64
		for k := 0; k < per && s.Rows+n < rows; k++ {
			m := min(int64(s.Batch), rows-s.Rows-n)
			part := g.batch(buf[len(buf):], (s.Rows+n)/int64(s.Batch), s.Rows+n, int(m))
			buf = append(buf, part...)
			n += m
			if m < int64(s.Batch) {
				break
			}
		}
		var err error
		if bulk != nil {
			err = bulk.BulkAppend(ctx, buf)
		} else {
			err = st.Archive().Append(ctx, buf)
		}
		if err != nil {
			return fmt.Errorf("archivegen: append at row %d: %w", s.Rows, err)
		}
		s.Rows += n
		if progress != nil {
			progress(Progress{Rows: s.Rows, Elapsed: time.Since(t0)})
		}
		if n%int64(s.Batch) != 0 {
			// A short last batch: later resumes could not start at a
			// batch boundary.
			break
		}
	}
	return nil
}

// BulkAppender is a store that can write many rows of an archive at once
// (sqlite.Store.BulkAppend: one transaction straight into the indexes,
// the same Seq and Stamp as Append would give), which Fill then uses.
type BulkAppender interface {
	BulkAppend(ctx context.Context, msgs []storage.ArchiveMessage) error
}

// BulkRows is about how many rows Fill gives a BulkAppender per call.
const BulkRows = 200_000

type gen struct {
	s      *State
	rng    *rand.Rand
	owners *rand.Zipf // account rank - 1
	peers  *rand.Zipf // contact index within an account's contacts
}

// contacts is how many contacts each account talks to.
const contacts = 40

func newGen(s *State) *gen {
	g := &gen{s: s, rng: rand.New(rand.NewPCG(s.Seed, 0))}
	g.owners = rand.NewZipf(g.rng, 1.1, 20, uint64(s.Accounts-1))
	g.peers = rand.NewZipf(g.rng, 1.3, 1, contacts-1)
	return g
}

// contact is account k's contact c: the account number of a local one, or
// a remote bare JID.
func (g *gen) contact(k, c int) (local int, remote string) {
	h := mix(g.s.Seed ^ uint64(k)<<20 ^ uint64(c))
	if h%5 == 0 { // one in five is on another server
		return 0, "c" + strconv.FormatUint(h>>8%100000, 10) + "@remote" + strconv.FormatUint(h>>40%50, 10) + ".example"
	}
	l := int(h>>8%uint64(g.s.Accounts)) + 1
	if l == k {
		l = l%g.s.Accounts + 1
	}
	return l, ""
}

// mix is SplitMix64's finalizer.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

var resources = []string{"phone", "laptop", "desktop", "Conversations.x7Qa", "gajim.K2P9", "tablet"}

// batch appends n rows (rows first … first+n-1, batch number b) to buf.
func (g *gen) batch(buf []storage.ArchiveMessage, b, first int64, n int) []storage.ArchiveMessage {
	*g.rng = *rand.New(rand.NewPCG(g.s.Seed, uint64(b)+1))
	i := first
	for len(buf) < n {
		k := int(g.owners.Uint64()) + 1
		local, remote := g.contact(k, int(g.peers.Uint64()))
		owner := g.s.Account(k)
		peer := remote
		if remote == "" {
			peer = g.s.Account(local)
		}
		out := g.rng.IntN(2) == 0
		ownRes := resources[g.rng.IntN(len(resources))]
		peerRes := resources[g.rng.IntN(len(resources))]
		id := g.uuid()
		from, to := owner+"/"+ownRes, peer
		if !out {
			from, to = peer+"/"+peerRes, owner
		}
		stanza := g.stanza(from, to, id)
		stamp := g.s.Stamp(i).Add(time.Duration(g.rng.Int64N(int64(g.s.Gap))))
		with := to
		if !out {
			with = from
		}
		buf = append(buf, storage.ArchiveMessage{Owner: owner, With: with, Outgoing: out, MessageID: id, OriginID: id, Stamp: stamp, Stanza: stanza})
		i++
		if remote == "" && len(buf) < n {
			// The same message in the local peer's archive, the other way.
			with := from
			if !out {
				with = to + "/" + ownRes
				stanza = g.stanza(from, to+"/"+ownRes, id)
			}
			stamp := g.s.Stamp(i).Add(time.Duration(g.rng.Int64N(int64(g.s.Gap))))
			buf = append(buf, storage.ArchiveMessage{Owner: peer, With: with, Outgoing: !out, MessageID: id, OriginID: id, Stamp: stamp, Stanza: stanza})
			i++
		}
	}
	return buf
}

func (g *gen) uuid() string {
	var b [16]byte
	for i := range 2 {
		v := g.rng.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// words is the body vocabulary; lower indexes are drawn more often.
var words = strings.Fields(`I you the a to it and is that of in be have not for we on what
with do this at so just can my are get was know your but me like will go if all no
yes ok okay now up out about one time see good think there when come how then want back
here see later tomorrow today tonight morning meeting lunch dinner call phone send sent
file photo picture link home work office train bus car late sorry thanks thank great
nice cool sure maybe really right well still need let's going been did does would
could should again already soon after before weekend monday friday week month year
love miss hope fine done ready busy free talk text message email doc review build
release test server deploy fix bug issue change plan trip flight hotel ticket price
book read watch movie game play music song party birthday coffee tea beer pizza
kids dog cat mom dad brother sister friend team boss client project deadline budget
report slides numbers update status news weather rain snow sun cold hot`)

var punct = []string{".", ",", "?", "!", " :)", "..."}

// stanza is a chat message as the server archives it.
func (g *gen) stanza(from, to, id string) []byte {
	// Body length: 64 to 300 bytes, most of them short.
	u := g.rng.Float64()
	target := 64 + int(236*u*u)
	var body strings.Builder
	for body.Len() < target {
		if body.Len() > 0 {
			if g.rng.IntN(8) == 0 {
				body.WriteString(punct[g.rng.IntN(len(punct))])
			}
			body.WriteByte(' ')
		}
		// Skewed toward the first words, as text is.
		w := int(float64(len(words)) * g.rng.Float64() * g.rng.Float64())
		body.WriteString(words[w])
	}
	var b strings.Builder
	b.Grow(target + 400)
	b.WriteString("<message xmlns='jabber:client' from='")
	b.WriteString(from)
	b.WriteString("' to='")
	b.WriteString(to)
	b.WriteString("' type='chat' id='")
	b.WriteString(id)
	b.WriteString("'><body>")
	b.WriteString(body.String())
	b.WriteString("</body><origin-id xmlns='urn:xmpp:sid:0' id='")
	b.WriteString(id)
	b.WriteString("'/>")
	if g.rng.IntN(4) != 0 {
		b.WriteString("<request xmlns='urn:xmpp:receipts'/>")
	}
	if g.rng.IntN(2) == 0 {
		b.WriteString("<markable xmlns='urn:xmpp:chat-markers:0'/>")
	}
	if g.rng.IntN(3) != 0 {
		b.WriteString("<active xmlns='http://jabber.org/protocol/chatstates'/>")
	}
	b.WriteString("</message>")
	return []byte(b.String())
}
