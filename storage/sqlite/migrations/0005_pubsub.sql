-- 0005: personal pubsub (XEP-0163 PEP) nodes and their items. Nodes belong
-- to an account (ON DELETE CASCADE), items to a node (ON DELETE CASCADE), so
-- deleting an account removes both.

CREATE TABLE pubsub_nodes (
	owner      TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	node       TEXT    NOT NULL,
	config     TEXT    NOT NULL DEFAULT '{}',    -- JSON object: field var → array of values
	created_us INTEGER NOT NULL,
	PRIMARY KEY (owner, node)
) WITHOUT ROWID;

-- seq is the publication order: republishing an ID deletes the old row and
-- inserts a new one. AUTOINCREMENT never reuses a seq, so order survives
-- deletions of the newest rows. Rowid table: payloads can be large.
CREATE TABLE pubsub_items (
	seq          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	owner        TEXT    NOT NULL,
	node         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	publisher    TEXT    NOT NULL DEFAULT '',
	published_us INTEGER NOT NULL,
	payload      BLOB    NOT NULL,
	FOREIGN KEY (owner, node) REFERENCES pubsub_nodes (owner, node) ON DELETE CASCADE,
	UNIQUE (owner, node, id)
);

CREATE INDEX pubsub_items_order ON pubsub_items (owner, node, seq);
