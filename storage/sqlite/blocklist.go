package sqlite

import "github.com/xmppd/xmppd/storage"

// Blocklist implements storage.Blocklist.
func (s *Store) Blocklist() storage.Blocklist { return nil }
