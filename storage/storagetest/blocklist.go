package storagetest

import "testing"

func testBlocklist(t *testing.T, open opener) {}
