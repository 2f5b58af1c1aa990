package sqlite

import "github.com/xmppd/xmppd/storage"

// PubSub implements storage.PubSub.
func (s *Store) PubSub() storage.PubSub { return nil }
