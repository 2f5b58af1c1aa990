package storage

import "context"

// Blocklist stores XEP-0191 blocking lists: for each account, a set of
// blocked JIDs. An entry is any JID the XEP's matching rules know (full
// user@domain/resource, bare user@domain, domain/resource, domain), kept as
// the canonical string the caller gives; backends compare and sort entries
// byte for byte and never interpret them.
//
// Lists belong to accounts: Block for a JID without an account is
// ErrNotFound, reads give an empty list, and deleting the account deletes
// its list (entries naming it in other users' lists stay).
type Blocklist interface {
	// List returns owner's blocked JIDs, sorted.
	List(ctx context.Context, owner string) ([]string, error)
	// Block adds jids to owner's list and returns the ones that were not
	// listed before, in the order given, without duplicates. When the list
	// would then hold more than limit entries (limit <= 0: no limit) nothing
	// is added and the error is ErrQuotaExceeded, checked atomically with the
	// change.
	Block(ctx context.Context, owner string, jids []string, limit int) ([]string, error)
	// Unblock removes jids from owner's list and returns the ones that were
	// listed, in the order given, without duplicates.
	Unblock(ctx context.Context, owner string, jids []string) ([]string, error)
	// UnblockAll empties owner's list and returns what it held, sorted.
	UnblockAll(ctx context.Context, owner string) ([]string, error)
}
