package sqlite

import "github.com/xmppd/xmppd/storage"

// VCards implements storage.VCards.
func (s *Store) VCards() storage.VCards { return nil }
