package storage

import (
	"context"
	"time"
)

// ArchiveMessage is one message in a user's archive (XEP-0313 MAM).
type ArchiveMessage struct {
	// Seq is assigned by Append: unique in the store, strictly increasing in
	// the order messages were appended, never reused (not even after the
	// newest messages were deleted). The archive's order is Seq order, the
	// order of truth; the mam module derives the public archive id (the
	// XEP-0359 stanza-id) from it. Backends should not let it reveal more
	// than Stamp does (SQLite uses the receive time in microseconds, bumped
	// to stay strictly increasing).
	Seq int64
	// Owner is the bare JID whose archive holds the message.
	Owner string
	// Stamp is when the server archived the message (XEP-0203 delay in
	// query results). Append assigns it: a zero Stamp means now; a given one
	// is kept unless it is not after the store's newest message, then it is
	// moved just after it. Stamps never decrease in Seq order, so time
	// filters are ranges of the archive order.
	Stamp time.Time
	// With is the other party as addressed on the stanza: the 'to' of an
	// outgoing message, the 'from' of an incoming one; a full or bare JID.
	With string
	// Outgoing is true when Owner sent the message.
	Outgoing bool
	// MessageID and OriginID are the message's 'id' attribute and its
	// XEP-0359 origin-id (either may be empty); FindByMessageID matches them
	// (XEP-0424 retraction).
	MessageID string
	OriginID  string
	// Retracted is when the message was retracted (zero: it was not); its
	// Stanza is then the tombstone Retract stored.
	Retracted time.Time
	// Stanza is the message element as it was archived (a standalone
	// element: it declares its own namespace).
	Stanza []byte
}

// ArchiveQuery selects messages of one archive. Every bound is optional;
// all given ones apply together.
type ArchiveQuery struct {
	Owner string
	// With keeps messages whose With matches: a bare JID matches With's bare
	// part (any resource), a full JID matches exactly.
	With string
	// Start and End keep messages with Start <= Stamp <= End (zero: unbounded).
	Start, End time.Time
	// After and Before keep messages with After < Seq < Before (0: unbounded).
	// A non-zero one that is not a message of Owner's archive is ErrNotFound.
	After, Before int64
	// IDs, when not nil, keeps only these messages; one that is not in
	// Owner's archive is ErrNotFound.
	IDs []int64
	// The fields above select messages (the result set); the ones below
	// choose a page of it.

	// PageAfter and PageBefore are paging cursors (RSM <after/> and
	// <before/>): the page holds selected messages with PageAfter < Seq <
	// PageBefore (0: unbounded). A non-zero one that is not a message of
	// Owner's archive is ErrNotFound.
	PageAfter, PageBefore int64
	// Max is the page size; the page holds at most Max messages (0: none,
	// which still reports Count).
	Max int
	// FromEnd takes the page from the end of what the cursors leave (the
	// newest Max, e.g. RSM <before/>), instead of from its beginning. The
	// page is in Seq order either way.
	FromEnd bool
	// Offset skips that many messages from the chosen end before the page
	// starts (RSM <index/>).
	Offset int
	// CountLimit bounds the cost of ArchivePage.Count and Index: they are
	// computed only when the selection holds at most CountLimit messages
	// (0: never computed).
	CountLimit int
}

// ArchivePage is the answer to an ArchiveQuery.
type ArchivePage struct {
	// Messages in Seq order.
	Messages []ArchiveMessage
	// Complete is true when nothing selected is left beyond the page in
	// the paging direction: after its last message for a query from the
	// beginning, before its first one for FromEnd (with Max 0: nothing at
	// all within the cursors).
	Complete bool
	// Count is the number of selected messages (the cursors, Max, FromEnd
	// and Offset do not change it), Index the position of the page's first
	// message among them; both -1 when not computed (see CountLimit), and
	// Index also when the page is empty.
	Count, Index int
}

// ArchivePrefs are a user's XEP-0441 archiving preferences.
type ArchivePrefs struct {
	// Default is "always", "never", "roster", or "" (never set: the server's default).
	Default string
	// Always and Never list JIDs (bare or full), sorted and unique.
	Always, Never []string
}

// Archive stores XEP-0313 user message archives.
//
// Archives belong to accounts: Append and SetPrefs for an owner without an
// account are ErrNotFound, reads for one give empty results; deleting an
// account deletes its archive and preferences.
type Archive interface {
	// Append stores msgs, each in its Owner's archive, all or none, and
	// returns once they are committed. It sets Seq and Stamp of every
	// element of msgs (their other fields are stored as given; Retracted
	// must be zero). Concurrent calls may be committed together in one
	// transaction (group commit); each returns only after its own commit.
	// If ctx ends before the messages were taken for writing, Append
	// returns ctx.Err() and nothing is stored.
	Append(ctx context.Context, msgs []ArchiveMessage) error
	// Enqueue queues msgs for writing like Append and returns at once,
	// without waiting for the disk: Seq and Stamp of every element are set
	// when it returns (in memory, in the order of Enqueue calls), and the
	// channel yields the result of the commit that holds them (nil once
	// they are durable), then is closed. A failed write leaves a gap in Seq;
	// a Seq is never reused. msgs must not be changed until the channel
	// yields. Reads issued after Enqueue returned (Get, Query,
	// FindByMessageID, Retract) see the messages of a successful write,
	// committed or not yet (read-your-writes).
	//
	// Enqueue blocks while the writes queued and not yet committed pass the
	// bound set with SetQueueLimit (backpressure: the caller slows down
	// instead of memory growing); if ctx ends meanwhile, or before the
	// messages were taken for writing, the channel yields ctx.Err() and
	// nothing is stored. A rejected call (Retracted set, ctx ended) leaves
	// Seq zero.
	Enqueue(ctx context.Context, msgs []ArchiveMessage) <-chan error
	// SetQueueLimit bounds the writes Enqueue lets wait for a commit, in
	// messages and in bytes of Stanza (<= 0: that dimension is unbounded).
	// A single call larger than the bound is let through when nothing
	// else is queued.
	SetQueueLimit(msgs int, bytes int64)
	// Get returns one message; ErrNotFound if it is not in owner's archive.
	Get(ctx context.Context, owner string, seq int64) (ArchiveMessage, error)
	// Query returns a page of one archive, read from one snapshot.
	Query(ctx context.Context, q ArchiveQuery) (ArchivePage, error)
	// FindByMessageID returns the newest message of owner's archive in the
	// given direction (outgoing or not) whose With has the bare JID withBare
	// and whose MessageID or OriginID is id; ErrNotFound if there is none
	// (an empty id matches nothing). A backend may look only through the
	// conversation's newest messages, so that a lookup's cost is bounded
	// whatever the conversation's size (the SQLite one reads its 1,000
	// newest, both directions).
	FindByMessageID(ctx context.Context, owner, withBare string, outgoing bool, id string) (ArchiveMessage, error)
	// Retract replaces the stored element of a message with tombstone and
	// records when it was retracted; the original content is removed from
	// the store. ErrNotFound if the message is not in owner's archive.
	Retract(ctx context.Context, owner string, seq int64, tombstone []byte, at time.Time) error
	// DeleteBefore removes the messages of every archive stamped before t
	// (retention) and returns how many were removed.
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
	// Prefs returns owner's preferences (zero value if never set).
	Prefs(ctx context.Context, owner string) (ArchivePrefs, error)
	// SetPrefs replaces owner's preferences; the lists are stored sorted
	// and unique.
	SetPrefs(ctx context.Context, owner string, p ArchivePrefs) error
}
