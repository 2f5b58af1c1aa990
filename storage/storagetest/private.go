package storagetest

import "testing"

func testPrivate(t *testing.T, open opener) {}
