-- 0010: the archive's append-only tail (storage/README.md, "The archive's
-- tail").
--
-- New archive rows go here first: a table without secondary indexes, keyed
-- by seq, so a commit appends to its last pages only instead of dirtying an
-- index leaf per owner in each of archive's two indexes. The writer moves
-- the tail into archive in bulk (INSERT … SELECT in owner order, then
-- DELETE), when it is large or when a read needs one of its owners' rows;
-- a seq is in exactly one of the two tables. Columns as in archive; rows are
-- never retracted here (a read, so a Retract, moves its owner's rows first).

CREATE TABLE archive_tail (
	seq          INTEGER NOT NULL PRIMARY KEY,
	owner        TEXT    NOT NULL,
	with_bare    TEXT    NOT NULL,
	with_res     TEXT    NOT NULL DEFAULT '',
	outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
	msg_id       TEXT    NOT NULL DEFAULT '',
	origin_id    TEXT    NOT NULL DEFAULT '',
	stanza       BLOB    NOT NULL
);

-- Owners are checked when rows are appended (once per batch); deleting an
-- account deletes its tail rows as the foreign key on archive deletes the
-- rest (the tail is small: a scan).
CREATE TRIGGER archive_tail_account_deleted AFTER DELETE ON accounts
BEGIN
	DELETE FROM archive_tail WHERE owner = old.jid;
END;
