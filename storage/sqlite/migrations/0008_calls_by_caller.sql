-- 0008: a call is keyed by its caller's bare JID and its id. The id is
-- chosen by the caller's client, so two callers may use the same one; a
-- record is only ever replaced by its own caller's calls.
CREATE TABLE calls_v8 (
	caller_bare TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	caller      TEXT    NOT NULL,
	callee      TEXT    NOT NULL,
	callee_bare TEXT    NOT NULL,
	media       TEXT    NOT NULL DEFAULT '',   -- space-separated: audio video
	start_us    INTEGER NOT NULL,
	answer_us   INTEGER,                       -- NULL: never answered
	end_us      INTEGER,                       -- NULL: still going
	end_reason  TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (caller_bare, id)
) WITHOUT ROWID;

INSERT INTO calls_v8 (caller_bare, id, caller, callee, callee_bare, media, start_us, answer_us, end_us, end_reason)
	SELECT caller_bare, id, caller, callee, callee_bare, media, start_us, answer_us, end_us, end_reason FROM calls;
DROP TABLE calls;
ALTER TABLE calls_v8 RENAME TO calls;

CREATE INDEX calls_by_caller ON calls (caller_bare, start_us);
CREATE INDEX calls_by_callee ON calls (callee_bare, start_us);
