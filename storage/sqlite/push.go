package sqlite

import "github.com/xmppd/xmppd/storage"

// PushRegistrations implements storage.PushRegistrations.
func (s *Store) PushRegistrations() storage.PushRegistrations { return nil }
