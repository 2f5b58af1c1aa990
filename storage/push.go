package storage

import (
	"context"
	"time"
)

// PushRegistration is one XEP-0357 registration: a device of an account
// asked that notifications go to an app server (Service) under a node.
// An account holds one registration per (Service, Node) pair.
type PushRegistration struct {
	// ID is assigned by the store on every Put (a replaced registration gets
	// a new one); IDs increase and are never reused, so RemoveID can tell a
	// registration from the one that replaced it.
	ID int64
	// Owner is the account's bare JID.
	Owner string
	// Service is the app server's JID (the enable element's jid attribute).
	Service string
	// Node is the app server's node for this device; callers never store an
	// empty Node.
	Node string
	// Form is the publish-options data form (<x xmlns='jabber:x:data'>…</x>)
	// the client gave, stored and returned byte for byte; nil when none (an
	// empty Form comes back nil).
	Form []byte
	// Resource is the resource of the session that enabled the registration
	// ("" if unknown): it tells which device the registration belongs to.
	Resource string
	// Enabled is when the registration was (last) enabled; a zero Enabled is
	// stored as now.
	Enabled time.Time
}

// PushRegistrations stores XEP-0357 push registrations, several per
// account (one per device).
//
// Registrations belong to accounts: Put for a JID without an account is
// ErrNotFound, reads give an empty list, and deleting the account deletes
// its registrations. Service and Node are compared byte for byte.
type PushRegistrations interface {
	// Put creates or replaces owner's registration for (reg.Service,
	// reg.Node) and returns its new ID (reg.ID is ignored). When the owner
	// would then hold more than limit registrations (limit <= 0: no limit)
	// nothing changes and the error is ErrQuotaExceeded, checked atomically
	// with the change; replacing a registration never counts against the
	// limit.
	Put(ctx context.Context, reg PushRegistration, limit int) (int64, error)
	// List returns owner's registrations sorted by Service, then Node.
	List(ctx context.Context, owner string) ([]PushRegistration, error)
	// Remove deletes owner's registration for service and node, or every
	// registration for service when node is "", and returns how many it
	// deleted (0 is not an error).
	Remove(ctx context.Context, owner, service, node string) (int, error)
	// RemoveID deletes owner's registration with that ID and reports whether
	// there was one: a registration replaced since (new ID) or another
	// owner's stays.
	RemoveID(ctx context.Context, owner string, id int64) (bool, error)
}
