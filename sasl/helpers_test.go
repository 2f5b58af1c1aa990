package sasl

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// memStore is a Lookup backed by a map, recording the hashes asked for.
type memStore struct {
	mu    sync.Mutex
	users map[string]map[string]storage.SCRAMKeys
	calls []string
	err   error // returned by every lookup if set
}

func (m *memStore) lookup(_ context.Context, user, hash string) (storage.SCRAMKeys, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, user+"/"+hash)
	if m.err != nil {
		return storage.SCRAMKeys{}, m.err
	}
	k, ok := m.users[user][hash]
	if !ok {
		return storage.SCRAMKeys{}, storage.ErrNotFound
	}
	return k, nil
}

var (
	testStoreOnce sync.Once
	testStore     *memStore
)

// store returns a shared store with user "juliet" / "r0m30!", keys for all
// hashes at DefaultIterations, and "sha1only" with SHA-1 keys only.
func store(t testing.TB) *memStore {
	testStoreOnce.Do(func() {
		keys, err := NewKeys("r0m30!", DefaultIterations)
		if err != nil {
			panic(err)
		}
		k1, err := DeriveKeys(SHA1, "old", []byte("0123456789abcdef"), DefaultIterations)
		if err != nil {
			panic(err)
		}
		testStore = &memStore{users: map[string]map[string]storage.SCRAMKeys{
			"juliet":   keys,
			"sha1only": {SHA1: k1},
		}}
	})
	return &memStore{users: testStore.users}
}

var scramMechs = []string{
	"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512",
	"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS",
}

// exchange runs client c against server s to the end.
func exchange(t testing.TB, c *Client, s Server) error {
	t.Helper()
	ctx := context.Background()
	resp, cdone, err := c.Step(nil)
	if err != nil {
		return err
	}
	for i := 0; i < 5; i++ {
		ch, sdone, err := s.Next(ctx, resp)
		if err != nil {
			return err
		}
		if sdone {
			if !cdone {
				_, cdone, err = c.Step(ch)
				if err != nil {
					return err
				}
			}
			if !cdone {
				return errors.New("client not done after server success")
			}
			return nil
		}
		if cdone {
			return errors.New("server wants more after client done")
		}
		resp, cdone, err = c.Step(ch)
		if err != nil {
			return err
		}
	}
	return errors.New("exchange does not end")
}

func fixedNonce(n string) func() (string, error) {
	return func() (string, error) { return n, nil }
}
