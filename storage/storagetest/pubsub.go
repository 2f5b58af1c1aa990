package storagetest

import "testing"

func testPubSub(t *testing.T, open opener) {}
