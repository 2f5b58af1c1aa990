-- 0001: accounts, SCRAM keys, rosters with groups and versions, offline queue.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL means "never".
-- JIDs are TEXT in canonical form, compared byte for byte (BINARY collation).

CREATE TABLE accounts (
	jid            TEXT    NOT NULL PRIMARY KEY,
	domain         TEXT    NOT NULL,              -- the part after '@', for List
	created_us     INTEGER NOT NULL,
	last_logout_us INTEGER,                       -- NULL: never logged out
	last_status    TEXT    NOT NULL DEFAULT '',
	roster_version INTEGER NOT NULL DEFAULT 0     -- XEP-0237, bumped with every roster change
) WITHOUT ROWID;

CREATE INDEX accounts_by_domain ON accounts (domain, jid);

-- RFC 5802 values per hash; the password itself is never stored.
CREATE TABLE scram_keys (
	jid        TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	hash       TEXT    NOT NULL,                  -- "SHA-1", "SHA-256", "SHA-512"
	salt       BLOB    NOT NULL,
	iterations INTEGER NOT NULL CHECK (iterations > 0),
	stored_key BLOB    NOT NULL,
	server_key BLOB    NOT NULL,
	PRIMARY KEY (jid, hash)
) WITHOUT ROWID;

CREATE TABLE roster_items (
	owner          TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	contact        TEXT    NOT NULL,              -- no foreign key: contacts may be remote or deleted
	name           TEXT    NOT NULL DEFAULT '',
	subscription   TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
	ask            INTEGER NOT NULL DEFAULT 0 CHECK (ask IN (0, 1)),
	pending_in     INTEGER NOT NULL DEFAULT 0 CHECK (pending_in IN (0, 1)),
	pending_in_xml BLOB,                          -- the stored subscribe presence
	approved       INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
	PRIMARY KEY (owner, contact)
) WITHOUT ROWID;

CREATE TABLE roster_groups (
	owner   TEXT NOT NULL,
	contact TEXT NOT NULL,
	grp     TEXT NOT NULL,
	PRIMARY KEY (owner, contact, grp),
	FOREIGN KEY (owner, contact) REFERENCES roster_items (owner, contact) ON DELETE CASCADE
) WITHOUT ROWID;

-- AUTOINCREMENT: a seq is never reused, even after the newest rows were
-- deleted, so a late Delete(upTo) can never remove a message stored after it.
CREATE TABLE offline (
	seq      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	owner    TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	stamp_us INTEGER NOT NULL,
	from_jid TEXT    NOT NULL,
	stanza   BLOB    NOT NULL
);

CREATE INDEX offline_by_owner ON offline (owner, seq);
