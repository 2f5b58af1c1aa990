// Package storage defines what xmppd keeps on disk, as domain interfaces.
// Callers depend only on these interfaces; storage/sqlite is the embedded
// default and storage/storagetest is the conformance suite that every
// implementation must pass.
//
// JIDs are passed as strings in canonical (PRECIS-prepared) form: bare JIDs
// as "local@domain". Implementations must not re-prepare or lowercase them:
// they compare and sort JIDs byte for byte (Go string order; in SQL, a
// binary collation such as PostgreSQL's "C").
//
// Conventions every implementation follows (storagetest checks them):
//   - The errors below are returned as themselves; callers compare with errors.Is.
//   - Times come back in UTC, at least to the millisecond (SQLite keeps microseconds).
//   - Rosters and offline queues belong to accounts: writing one (Roster.Put,
//     Roster.Remove, Offline.Store) for a JID that has no account is
//     ErrNotFound; reading one gives an empty result and version 0.
//   - Every method is safe for concurrent use and takes effect atomically.
package storage

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound is returned when the requested record does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists is returned when creating a record that already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrQuotaExceeded is returned when a per-user limit would be passed.
	ErrQuotaExceeded = errors.New("storage: quota exceeded")
)

// Store bundles every domain store of one backend.
type Store interface {
	Accounts() Accounts
	Roster() Roster
	Offline() Offline
	Archive() Archive
	Blocklist() Blocklist
	VCards() VCards
	Private() Private
	PubSub() PubSub
	PushRegistrations() PushRegistrations
	Calls() Calls
	Close() error
}

// SCRAMKeys are the RFC 5802 values kept for one hash; the password itself
// is never stored.
type SCRAMKeys struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Account is one user of a local domain.
type Account struct {
	JID     string               // bare JID
	Keys    map[string]SCRAMKeys // by hash name: "SHA-1", "SHA-256", "SHA-512"
	Created time.Time
	// LastLogout and LastStatus serve XEP-0012 last activity for an account
	// with no available resource.
	LastLogout time.Time
	LastStatus string
}

// Accounts holds user accounts and their credentials.
type Accounts interface {
	// Create adds an account; ErrExists if it is already there. A zero
	// Created is stored as the current time.
	Create(ctx context.Context, a Account) error
	// Get returns an account; ErrNotFound if there is none.
	Get(ctx context.Context, jid string) (Account, error)
	// Exists reports whether an account exists, without reading its
	// credentials. An error means the store could not answer, never "no".
	Exists(ctx context.Context, jid string) (bool, error)
	// Changes returns a counter that changes whenever an account is
	// created or deleted, by this process or another one sharing the store
	// (the CLI): a cache of Exists answers compares it to stay current.
	Changes(ctx context.Context) (uint64, error)
	// SetKeys replaces every stored key set (password change).
	SetKeys(ctx context.Context, jid string, keys map[string]SCRAMKeys) error
	// SetLast records the time and status of the last logout.
	SetLast(ctx context.Context, jid string, t time.Time, status string) error
	// Delete removes the account and everything the store keeps for it
	// (roster, offline messages); ErrNotFound if there is none. Other users'
	// data stays, including their roster items that point at jid.
	Delete(ctx context.Context, jid string) error
	// List returns the bare JIDs of a domain's accounts, sorted; all domains when domain is "".
	List(ctx context.Context, domain string) ([]string, error)
}

// Subscription is the RFC 6121 subscription state of a roster item.
type Subscription string

const (
	SubNone Subscription = "none"
	SubTo   Subscription = "to"
	SubFrom Subscription = "from"
	SubBoth Subscription = "both"
)

// RosterItem is one contact in a user's roster, with the pending and
// pre-approval flags of RFC 6121 §3.1.
type RosterItem struct {
	JID          string // contact's bare JID
	Name         string
	Subscription Subscription
	Ask          bool     // a subscription request to the contact is pending out
	PendingIn    bool     // the contact asked to subscribe and was not answered
	PendingInXML []byte   // the stored subscribe presence (for redelivery)
	Approved     bool     // pre-approved (RFC 6121 §3.4)
	Groups       []string // sorted, unique
	// Hidden marks an item kept only to remember a pending inbound request
	// from a contact the user never added: it is not shown in the roster.
	// Storage keeps it like any other field; the roster module sets and
	// clears it.
	Hidden bool
}

// Roster holds rosters with a per-user version counter (XEP-0237): every
// change increments the version of that user's roster.
type Roster interface {
	// Items returns every item (hidden and pending-in ones included), sorted
	// by JID, and the current version, both from one consistent snapshot.
	Items(ctx context.Context, owner string) ([]RosterItem, uint64, error)
	// Item returns one item; ErrNotFound if there is none.
	Item(ctx context.Context, owner, contact string) (RosterItem, error)
	// Put creates or replaces an item and returns the new version. Groups are
	// stored sorted and unique whatever order they come in; an empty
	// Subscription is stored as SubNone.
	Put(ctx context.Context, owner string, item RosterItem) (uint64, error)
	// Remove deletes an item and returns the new version; ErrNotFound if there is none.
	Remove(ctx context.Context, owner, contact string) (uint64, error)
	// Version returns the current version (0 for an empty, never changed roster).
	Version(ctx context.Context, owner string) (uint64, error)
}

// RosterOp is what RosterUpdater.Update does with the item its function
// returns.
type RosterOp int

const (
	RosterKeep   RosterOp = iota // write nothing; the version stays
	RosterPut                    // store the item, as Put
	RosterRemove                 // delete the item, as Remove (nothing to delete: as RosterKeep)
)

// RosterCounts counts an owner's items, as RosterUpdater.Update sees them:
// all of them, and those not Hidden.
type RosterCounts func() (all, visible int, err error)

// RosterUpdateFunc decides the new state of one item from its current one
// (found false: a zero item with the contact's JID and SubNone). It runs
// while the store holds the item, so it must be quick and must not call the
// store; it may run more than once for one Update (the last run's result is
// the one applied). An error leaves the item as it was and is returned by
// Update.
type RosterUpdateFunc func(cur RosterItem, found bool, count RosterCounts) (RosterItem, RosterOp, error)

// RosterUpdate is the result of RosterUpdater.Update.
type RosterUpdate struct {
	Before  RosterItem // the item read (see RosterUpdateFunc)
	Found   bool
	After   RosterItem // the item stored (RosterPut), removed (RosterRemove), or Before
	Op      RosterOp   // what was done (RosterKeep when a removal found nothing)
	Version uint64     // the new version after RosterPut or RosterRemove; 0 for RosterKeep
}

// RosterUpdater is a Roster that reads, changes and writes one item as one
// step: no other change of that item comes between the read and the write,
// and the change is durable when Update returns. The roster module uses it
// when the store has it, for subscription changes (a read-modify-write of
// one item each), and Item then Put or Remove under its own lock otherwise.
type RosterUpdater interface {
	Update(ctx context.Context, owner, contact string, fn RosterUpdateFunc) (RosterUpdate, error)
}

// OfflineMessage is a message stored for an account with no available resource.
type OfflineMessage struct {
	Seq    int64     // store-assigned, increasing in arrival order
	Stamp  time.Time // when the server received it (XEP-0203)
	From   string    // full JID the message came from
	Stanza []byte    // the raw message element
}

// Offline is the XEP-0160 store-and-forward queue.
type Offline interface {
	// Store appends a message; ErrQuotaExceeded when the user already holds
	// limit messages (limit <= 0 means no limit), checked atomically with the
	// append. It returns when committed. A zero Stamp is stored as the
	// current time. Seq values are never reused, even after Delete.
	Store(ctx context.Context, owner string, m OfflineMessage, limit int) error
	// List returns every stored message in arrival order.
	List(ctx context.Context, owner string) ([]OfflineMessage, error)
	// ListAfter returns, in arrival order, the stored messages with Seq >
	// after, as many as fit in maxBytes of stanzas, and at least one if
	// there is one (maxBytes <= 0: all of them). Delivery reads a user's
	// messages this way, a bounded chunk at a time.
	ListAfter(ctx context.Context, owner string, after int64, maxBytes int) ([]OfflineMessage, error)
	// Delete removes the messages with Seq <= upTo (after they were handed
	// to a session), so a crash between List and Delete loses nothing.
	Delete(ctx context.Context, owner string, upTo int64) error
	// Count returns how many messages are stored.
	Count(ctx context.Context, owner string) (int, error)
}
