package storage

import (
	"context"
	"time"
)

// PubSubNode is one node of an account's personal pubsub service (XEP-0163
// PEP: the service is the account's bare JID).
type PubSubNode struct {
	// Name is the NodeID, any non-empty string, compared byte for byte.
	Name string
	// Config is the node configuration as XEP-0004 fields, var → values
	// ("pubsub#access_model" → ["presence"]). Storage keeps it as given and
	// never interprets it; a nil or empty map comes back empty (non-nil).
	Config map[string][]string
	// Created is when the node was created; a zero Created is stored as now.
	Created time.Time
}

// PubSubItem is one item published to a node.
type PubSubItem struct {
	// ID is the ItemID, unique within its node.
	ID string
	// Publisher is the JID that published it (informational).
	Publisher string
	// Published is when it was (last) published; a zero Published is stored
	// as now.
	Published time.Time
	// Payload is the item's content (normally one element), stored and
	// returned byte for byte; it may be empty.
	Payload []byte
}

// PubSubLast is a node together with its newest item.
type PubSubLast struct {
	Node PubSubNode
	Item PubSubItem
}

// PubSub stores the nodes and items of accounts' personal pubsub services
// (XEP-0060 as profiled by XEP-0163).
//
// Nodes belong to accounts: creating one for a JID without an account is
// ErrNotFound, and deleting the account deletes its nodes and their items.
// Items belong to nodes: they go when their node is deleted.
//
// A node's items are ordered by publication (XEP-0060 §12.1): publishing an
// item whose ID exists replaces it, and the new version is the newest item.
// The caller enforces max_items by passing the limit to Publish and
// ConfigureNode, which trim the oldest items beyond it in the same
// transaction. Every list of items comes back oldest first.
type PubSub interface {
	// CreateNode creates owner's node n. ErrExists if owner already has a
	// node of that name; ErrNotFound if owner has no account;
	// ErrQuotaExceeded if owner already has maxNodes nodes (maxNodes <= 0:
	// no limit), checked atomically with the creation.
	CreateNode(ctx context.Context, owner string, n PubSubNode, maxNodes int) error
	// Node returns one node; ErrNotFound if there is none.
	Node(ctx context.Context, owner, name string) (PubSubNode, error)
	// Nodes returns every node of owner, sorted by name (empty for an
	// unknown owner).
	Nodes(ctx context.Context, owner string) ([]PubSubNode, error)
	// ConfigureNode replaces a node's configuration, then deletes its oldest
	// items beyond maxItems (maxItems <= 0: keeps all), atomically.
	// ErrNotFound if there is no such node.
	ConfigureNode(ctx context.Context, owner, name string, config map[string][]string, maxItems int) error
	// DeleteNode removes a node with its items; ErrNotFound if there is none.
	DeleteNode(ctx context.Context, owner, name string) error

	// Publish stores it as the newest item of the node, replacing the item
	// with the same ID if there is one, then deletes the oldest items
	// beyond maxItems (maxItems <= 0: keeps all), atomically. ErrNotFound
	// if there is no such node.
	Publish(ctx context.Context, owner, node string, it PubSubItem, maxItems int) error
	// Items returns the node's newest max items (max <= 0: all), oldest
	// first. ErrNotFound if there is no such node.
	Items(ctx context.Context, owner, node string, max int) ([]PubSubItem, error)
	// ItemsByID returns the node's items whose IDs are in ids (those that
	// exist; duplicates in ids count once), oldest first. ErrNotFound if
	// there is no such node.
	ItemsByID(ctx context.Context, owner, node string, ids []string) ([]PubSubItem, error)
	// Retract deletes one item; ErrNotFound if the node or the item does
	// not exist.
	Retract(ctx context.Context, owner, node, id string) error
	// Purge deletes every item of a node; ErrNotFound if there is no such node.
	Purge(ctx context.Context, owner, node string) error
	// LastItems returns, for each of owner's nodes named in nodes (every
	// node when nodes is nil) that holds at least one item, the node and its
	// newest item, sorted by node name.
	LastItems(ctx context.Context, owner string, nodes []string) ([]PubSubLast, error)
}
