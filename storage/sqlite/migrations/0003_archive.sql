-- 0003: XEP-0313 message archives (storage.Archive) and XEP-0441 preferences.
--
-- seq is the rowid and the archive order. It is also the time the message was
-- archived, in microseconds since the Unix epoch (UTC), bumped by the writer
-- to stay strictly increasing: the stamp needs no column of its own, a time
-- filter is a seq range and retention deletes a rowid range. A seq is never
-- reused: a new one is max(now, newest + 1).

CREATE TABLE archive (
	seq          INTEGER NOT NULL PRIMARY KEY,
	owner        TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	with_bare    TEXT    NOT NULL,              -- the other party, bare
	with_res     TEXT    NOT NULL DEFAULT '',   -- and its resource, if the stanza had one
	outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
	msg_id       TEXT    NOT NULL DEFAULT '',   -- the message's id attribute
	origin_id    TEXT    NOT NULL DEFAULT '',   -- XEP-0359 origin-id
	retracted_us INTEGER,                       -- NULL: not retracted; else stanza is the tombstone
	stanza       BLOB    NOT NULL
);

-- Paging one archive in order, and the 'with' filter (and XEP-0424 lookups,
-- newest first, by conversation).
CREATE INDEX archive_by_owner ON archive (owner, seq);
CREATE INDEX archive_by_with ON archive (owner, with_bare, seq);

CREATE TABLE archive_prefs (
	owner        TEXT NOT NULL PRIMARY KEY REFERENCES accounts (jid) ON DELETE CASCADE,
	default_mode TEXT NOT NULL CHECK (default_mode IN ('', 'always', 'never', 'roster')),
	always       TEXT NOT NULL DEFAULT '[]',    -- JSON arrays of JIDs, sorted, unique
	never        TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
