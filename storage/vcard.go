package storage

import (
	"context"
	"time"
)

// VCard is one account's XEP-0054 vCard.
type VCard struct {
	// XML is the complete <vCard xmlns='vcard-temp'>…</vCard> element, stored
	// and returned byte for byte.
	XML []byte
	// PhotoHash is the XEP-0153 hash of the photo (lowercase hex SHA-1 of the
	// decoded PHOTO/BINVAL), "" when the vCard has none. The caller computes
	// it; storage only keeps it beside XML, so that presence can carry it
	// without reading the whole vCard.
	PhotoHash string
	// Updated is when the vCard was stored; a zero Updated is stored as now.
	Updated time.Time
}

// VCards stores XEP-0054 vCard-temp documents, one per account. vCards
// belong to accounts: Put for a JID without an account is ErrNotFound, and
// deleting the account deletes its vCard.
type VCards interface {
	// Get returns owner's vCard; ErrNotFound if none is stored.
	Get(ctx context.Context, owner string) (VCard, error)
	// Put stores (replaces) owner's vCard.
	Put(ctx context.Context, owner string, v VCard) error
	// Delete removes owner's vCard; ErrNotFound if none is stored.
	Delete(ctx context.Context, owner string) error
	// PhotoHash returns the PhotoHash of owner's vCard without reading the
	// vCard itself; ErrNotFound if no vCard is stored.
	PhotoHash(ctx context.Context, owner string) (string, error)
}
