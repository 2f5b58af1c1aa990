package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/archivegen"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// archiveOf reads every account's whole archive from the data directory.
func archiveOf(t *testing.T, dir string, accounts int) (all []storage.ArchiveMessage) {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(dir, "xmppd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := archivegen.State{Prefix: "user", Domain: "bench.localhost"}
	for k := 1; k <= accounts; k++ {
		p, err := s.Archive().Query(t.Context(), storage.ArchiveQuery{Owner: st.Account(k), Max: 100000})
		if err != nil || !p.Complete {
			t.Fatalf("archive of %s: %v", st.Account(k), err)
		}
		all = append(all, p.Messages...)
	}
	return all
}

// TestFillResume: a fill stopped and resumed with a larger -n gives the
// same archive as one run; the archive has the generated shape.
func TestFillResume(t *testing.T) {
	once, twice := t.TempDir(), t.TempDir()
	args := func(dir, n string) []string {
		return []string{"-data", dir, "-n", n, "-accounts", "50", "-batch", "500", "-report", "1000", "-span", "720h"}
	}
	var out, errb bytes.Buffer
	if rc := run(args(once, "3000"), &out, &errb); rc != 0 {
		t.Fatalf("one run: rc %d: %s", rc, errb.String())
	}
	if !strings.Contains(out.String(), "3000 rows\t") {
		t.Errorf("no progress line for 3000 rows in %q", out.String())
	}
	if rc := run(append(args(twice, "1500"), "-plan", "3000"), &out, &errb); rc != 0 {
		t.Fatalf("first half: rc %d: %s", rc, errb.String())
	}
	out.Reset()
	if rc := run(args(twice, "3000"), &out, &errb); rc != 0 {
		t.Fatalf("second half: rc %d: %s", rc, errb.String())
	}
	if !strings.Contains(out.String(), "resuming at 1500 rows") {
		t.Errorf("second half did not resume: %q", out.String())
	}
	a, b := archiveOf(t, once, 50), archiveOf(t, twice, 50)
	if len(a) != 3000 || len(b) != 3000 {
		t.Fatalf("%d and %d rows, want 3000", len(a), len(b))
	}
	out.Reset()
	in, dirs := 0, map[bool]int{}
	// The runs started at different times, so did their stamps (the
	// newest is about now): the same by a constant shift.
	shift := b[0].Stamp.Sub(a[0].Stamp)
	for i := range a {
		if b[i].Stamp.Sub(a[i].Stamp) != shift || a[i].Owner != b[i].Owner || a[i].With != b[i].With ||
			a[i].Outgoing != b[i].Outgoing || a[i].MessageID != b[i].MessageID || !bytes.Equal(a[i].Stanza, b[i].Stanza) {
			t.Fatalf("row %d differs: %+v\n%+v", i, a[i], b[i])
		}
		dirs[a[i].Outgoing]++
		body := string(a[i].Stanza)
		body = body[strings.Index(body, "<body>")+6 : strings.Index(body, "</body>")]
		if len(body) < 64 || len(body) > 320 {
			t.Errorf("body of %d bytes", len(body))
		}
		if strings.HasSuffix(a[i].With, ".example") || strings.Contains(a[i].With, "@remote") {
			in++
		}
	}
	if dirs[true] < 1000 || dirs[false] < 1000 {
		t.Errorf("directions: %v", dirs)
	}
	if in == 0 || in > 1500 {
		t.Errorf("%d of 3000 rows with remote contacts", in)
	}
}
