-- 0008: a counter of account creations and deletions. The server caches
-- "does this account exist" and compares this counter to notice changes made
-- by another process on the same file (the `xmppd user` CLI).

CREATE TABLE account_changes (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
);

INSERT INTO account_changes (id, n) VALUES (1, 0);

CREATE TRIGGER accounts_created AFTER INSERT ON accounts
BEGIN
	UPDATE account_changes SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER accounts_deleted AFTER DELETE ON accounts
BEGIN
	UPDATE account_changes SET n = n + 1 WHERE id = 1;
END;
