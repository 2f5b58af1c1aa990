package storagetest

import "testing"

func testVCards(t *testing.T, open opener) {}
