package storagetest

import "testing"

func testPushRegistrations(t *testing.T, open opener) {}
