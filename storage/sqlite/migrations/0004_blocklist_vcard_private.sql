-- 0004: XEP-0191 blocklists, XEP-0054 vCards (with the XEP-0153 photo hash)
-- and XEP-0049 private XML storage. Each belongs to an account: rows go
-- with it (ON DELETE CASCADE). Blocked JIDs have no foreign key: they may be
-- remote, domains, or deleted accounts.

CREATE TABLE blocklist (
	owner TEXT NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	jid   TEXT NOT NULL,                      -- full, bare, domain/resource or domain
	PRIMARY KEY (owner, jid)
) WITHOUT ROWID;

-- Rowid tables: vCards and private XML can be large (WITHOUT ROWID suits
-- small rows only).
CREATE TABLE vcards (
	owner      TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (jid) ON DELETE CASCADE,
	xml        BLOB    NOT NULL,              -- <vCard xmlns='vcard-temp'>…</vCard>
	photo_hash TEXT    NOT NULL DEFAULT '',   -- XEP-0153 SHA-1 of PHOTO/BINVAL, '' when none
	updated_us INTEGER NOT NULL
);

CREATE TABLE private_xml (
	owner TEXT NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	ns    TEXT NOT NULL,                      -- namespace of the stored element(s)
	xml   BLOB NOT NULL,
	PRIMARY KEY (owner, ns)
);
