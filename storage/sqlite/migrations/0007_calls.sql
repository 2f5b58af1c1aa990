-- 0007: call records (XEP-0353 / Jingle calls the server routed).
CREATE TABLE calls (
	id          TEXT    NOT NULL PRIMARY KEY,
	caller      TEXT    NOT NULL,
	callee      TEXT    NOT NULL,
	caller_bare TEXT    NOT NULL,
	callee_bare TEXT    NOT NULL,
	media       TEXT    NOT NULL DEFAULT '',   -- space-separated: audio video
	start_us    INTEGER NOT NULL,
	answer_us   INTEGER,                       -- NULL: never answered
	end_us      INTEGER,                       -- NULL: still going
	end_reason  TEXT    NOT NULL DEFAULT ''
) WITHOUT ROWID;

CREATE INDEX calls_by_caller ON calls (caller_bare, start_us);
CREATE INDEX calls_by_callee ON calls (callee_bare, start_us);
