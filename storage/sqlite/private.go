package sqlite

import "github.com/xmppd/xmppd/storage"

// Private implements storage.Private.
func (s *Store) Private() storage.Private { return nil }
