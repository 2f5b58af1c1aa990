package turn

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v4"
)

func TestCredentialsKnownVector(t *testing.T) {
	// Computed with Python's hmac/hashlib, independently of this code.
	u, p := CredentialsUntil("north-wind", "alice@example.org", time.Unix(1700000000, 0))
	if u != "1700000000:alice@example.org" || p != "zCdVRyESYKNQ2LP7HhZXcpcvzPw=" {
		t.Fatalf("got %q %q", u, p)
	}
}

func TestCredentialsMatchPion(t *testing.T) {
	pu, pp, err := pionturn.GenerateLongTermTURNRESTCredentials("s3cret", "bob@example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ts, _, _ := strings.Cut(pu, ":")
	n, _ := strconv.ParseInt(ts, 10, 64)
	u, p := CredentialsUntil("s3cret", "bob@example.org", time.Unix(n, 0))
	if u != pu || p != pp {
		t.Fatalf("ours %q %q, pion %q %q", u, p, pu, pp)
	}
}

func TestCheck(t *testing.T) {
	now := time.Now()
	u, p, exp := Credentials("k", "carol@example.org", time.Hour)
	if exp.Sub(now) < 59*time.Minute || exp.Sub(now) > time.Hour {
		t.Fatalf("expires %v", exp)
	}
	if user, err := Check("k", u, p, now); err != nil || user != "carol@example.org" {
		t.Fatalf("Check = %q, %v", user, err)
	}
	if _, err := Check("other", u, p, now); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := Check("k", u, p, now.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("later: %v", err)
	}
	for _, bad := range []string{"", "alice", ":alice", "12x:alice", "123:", "-5:alice", "+5:alice", "99999999999999:a"} {
		if _, err := Check("k", bad, Password("k", bad), now); !errors.Is(err, ErrMalformedUsername) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
