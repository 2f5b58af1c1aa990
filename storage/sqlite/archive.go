package sqlite

import "github.com/xmppd/xmppd/storage"

// Archive implements storage.Archive.
func (s *Store) Archive() storage.Archive { return nil }
