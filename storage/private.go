package storage

import "context"

// PrivateItem is what one namespace holds in an account's XEP-0049 private
// XML storage.
type PrivateItem struct {
	// NS is the namespace of the stored element(s), e.g. "storage:bookmarks".
	NS string
	// XML is one or more complete elements qualified by NS, stored and
	// returned byte for byte (for XEP-0048 bookmarks:
	// <storage xmlns='storage:bookmarks'>…</storage>).
	XML []byte
}

// Private stores XEP-0049 private XML: per account, one XML fragment per
// namespace. Other modules may read and write it too (the XEP-0402 #compat
// view of bookmarks reads and writes namespace "storage:bookmarks").
//
// Data belongs to accounts: Put for a JID without an account is
// ErrNotFound, and deleting the account deletes its data.
type Private interface {
	// Get returns the XML stored under ns; ErrNotFound if none.
	Get(ctx context.Context, owner, ns string) ([]byte, error)
	// Put stores the items, each replacing what its namespace held (an item
	// with empty XML removes its namespace), all in one atomic change. When
	// the owner's stored XML would then total more than limit bytes (limit
	// <= 0: no limit) nothing changes and the error is ErrQuotaExceeded.
	// If items name a namespace twice, the last one wins.
	Put(ctx context.Context, owner string, items []PrivateItem, limit int) error
	// Delete removes what ns holds; ErrNotFound if nothing.
	Delete(ctx context.Context, owner, ns string) error
}
