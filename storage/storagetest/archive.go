package storagetest

import "testing"

func testArchive(t *testing.T, open opener) {}
