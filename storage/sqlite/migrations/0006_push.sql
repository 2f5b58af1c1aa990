-- 0006: XEP-0357 push registrations, several per account (one per device
-- and app server node). They belong to the account (ON DELETE CASCADE).
--
-- id is AUTOINCREMENT and replaced on every Put: a late RemoveID(id) (an app
-- server error for an old registration) cannot remove the registration that
-- replaced it. The UNIQUE constraint's index also serves List (owner, sorted
-- by service, node).

CREATE TABLE push_registrations (
	id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	owner      TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	service    TEXT    NOT NULL,               -- app server JID
	node       TEXT    NOT NULL,
	form       BLOB    NOT NULL,               -- publish-options <x xmlns='jabber:x:data'/>, empty when none
	resource   TEXT    NOT NULL DEFAULT '',    -- the enabling session's resource
	enabled_us INTEGER NOT NULL,
	UNIQUE (owner, service, node)
);
