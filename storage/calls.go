package storage

import (
	"context"
	"time"
)

// Call end reasons, as XEP-0166 reason names where one fits.
const (
	CallSuccess           = "success"
	CallDecline           = "decline"
	CallBusy              = "busy"
	CallTimeout           = "timeout"
	CallConnectivityError = "connectivity-error"
	CallCancel            = "cancel"
)

// CallRecord is one call the server routed (XEP-0353 and/or Jingle).
type CallRecord struct {
	ID        string    // the JMI id, which is also the Jingle sid; unique per caller only
	Caller    string    // full JID; (its bare JID, ID) is the record's key
	Callee    string    // full JID of the answering device, or the bare JID before an answer
	Media     []string  // "audio", "video"
	Start     time.Time // proposed or initiated
	Answer    time.Time // zero if never answered
	End       time.Time // zero while the call goes on
	EndReason string    // one of the Call* constants
}

// Calls keeps call records (for `xmppd calls list` and the admin console).
type Calls interface {
	// Put creates or replaces the record with the same ID and caller bare
	// JID; records of other callers with the same ID are left alone.
	Put(ctx context.Context, rec CallRecord) error
	// List returns records newest first, those where jid (a bare JID) is a
	// party, or all when jid is ""; at most limit (0: no limit).
	List(ctx context.Context, jid string, limit int) ([]CallRecord, error)
}
