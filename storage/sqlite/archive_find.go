package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/xmppd/xmppd/storage"
)

// findWindow is how many of a conversation's newest messages (both
// directions) FindByMessageID looks through: XEP-0424 retractions name a
// message by the id its sender gave it, which no index covers, so the
// lookup reads rows of the conversation newest first. Without a bound a
// retraction naming an id that is not there (or is old) read the whole
// conversation, and anyone can send those, to their own archive or, as the
// peer, to a local user's: one stanza made the server read a conversation
// of any size. Clients retract recent messages; a retraction of a message
// older than the window still reaches the peer's clients and is archived,
// only the archived original keeps its content.
//
// Why a window and not an index on the ids (MongooseIM's choice): the ids
// are random, so each archived row would land on a random leaf of such an
// index, a page written per row at every tail merge (the merge writes one
// leaf per owner per index now), and about 100 bytes per row on disk; a
// window costs neither and reads at most findWindow index entries and rows.
const findWindow = 1000

// findSQL selects the newest message of the conversation (owner, with_bare)
// in one direction whose msg_id or origin_id is the id, among the
// conversation's findWindow newest: the lower seq bound is the
// findWindow-th newest entry of archive_by_with (an index-only read), and
// the walk down archive_by_with stops there.
const findSQL = "SELECT " + archiveCols + ` FROM archive
	WHERE owner = ?1 AND with_bare = ?2
	AND seq >= COALESCE((SELECT seq FROM archive WHERE owner = ?1 AND with_bare = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3), 0)
	AND outgoing = ?4 AND (msg_id = ?5 OR origin_id = ?5)
	ORDER BY seq DESC LIMIT 1`

func (a *archive) FindByMessageID(ctx context.Context, owner, withBare string, outgoing bool, id string) (storage.ArchiveMessage, error) {
	if id == "" {
		return storage.ArchiveMessage{}, storage.ErrNotFound
	}
	if err := a.settle(ctx, owner); err != nil {
		return storage.ArchiveMessage{}, err
	}
	m, err := scanArchive(a.r.QueryRowContext(ctx, findSQL, owner, withBare, findWindow-1, outgoing, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, storage.ErrNotFound
	}
	return m, err
}
