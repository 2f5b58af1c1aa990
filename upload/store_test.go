package upload

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newSlot(owner string, size int64, now time.Time) *slot {
	return &slot{ID: newID(), Owner: owner, Name: "f.bin", Size: size, Created: now, PutExpires: now.Add(time.Minute).Truncate(time.Second)}
}

func put(t *testing.T, st *store, s *slot, data []byte, now time.Time) {
	t.Helper()
	f, err := st.claim(s.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := st.commit(s.ID, "application/octet-stream", now); err != nil {
		t.Fatal(err)
	}
}

func TestStoreReload(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	stored, pending, broken := newSlot("a@x", 3, now), newSlot("a@x", 5, now), newSlot("b@x", 7, now)
	for _, s := range []*slot{stored, pending, broken} {
		if _, ok, err := st.reserve(s, 0, 0, now); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	put(t, st, stored, []byte("abc"), now)
	// A crash in the middle of an upload leaves a .part file.
	if _, err := st.claim(broken.ID, now); err != nil {
		t.Fatal(err)
	}
	// Strangers in the directory: an orphan data file with an id name,
	// and a file that is not ours.
	orphan := newID()
	os.MkdirAll(st.shard(orphan), 0o700)
	os.WriteFile(st.dataPath(orphan), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not ours"), 0o600)

	st2, err := openStore(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := st2.lookup(stored.ID)
	if !ok || s.state != stateStored || s.Served != "application/octet-stream" || s.Uploaded.IsZero() {
		t.Fatalf("stored slot after reload: %+v", s)
	}
	if b, _ := os.ReadFile(st2.dataPath(stored.ID)); !bytes.Equal(b, []byte("abc")) {
		t.Fatalf("data %q", b)
	}
	if s, ok := st2.lookup(pending.ID); !ok || s.state != statePending {
		t.Fatalf("pending slot after reload: %+v", s)
	}
	// The interrupted upload: .part removed, the slot usable again.
	if _, err := os.Stat(st2.partPath(broken.ID)); !os.IsNotExist(err) {
		t.Fatalf(".part left: %v", err)
	}
	if s, ok := st2.lookup(broken.ID); !ok || s.state != statePending {
		t.Fatalf("interrupted slot: %+v", s)
	}
	if _, err := os.Stat(st2.dataPath(orphan)); !os.IsNotExist(err) {
		t.Fatal("orphan kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Fatal("a file that is not ours was touched")
	}
}

func TestStoreOneShot(t *testing.T) {
	st, _ := openStore(t.TempDir(), quiet)
	now := time.Now()
	s := newSlot("a@x", 1, now)
	st.reserve(s, 0, 0, now)
	f, err := st.claim(s.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.claim(s.ID, now); err != errUsed {
		t.Fatalf("second claim during the upload: %v", err)
	}
	f.Close()
	st.abandon(s.ID)
	put(t, st, s, []byte("x"), now)
	if _, err := st.claim(s.ID, now); err != errUsed {
		t.Fatalf("claim after the upload: %v", err)
	}
	late := newSlot("a@x", 1, now)
	st.reserve(late, 0, 0, now)
	if _, err := st.claim(late.ID, late.PutExpires); err != errExpired {
		t.Fatalf("claim after expiry: %v", err)
	}
	if _, err := st.claim(newID(), now); err != errNoSlot {
		t.Fatalf("claim of an unknown id: %v", err)
	}
}

func TestStoreQuotaAndSweep(t *testing.T) {
	st, _ := openStore(t.TempDir(), quiet)
	now := time.Now()
	const after = time.Hour
	a := newSlot("a@x", 400, now)
	st.reserve(a, 1000, after, now)
	put(t, st, a, bytes.Repeat([]byte{1}, 400), now)
	b := newSlot("a@x", 400, now)
	if _, ok, _ := st.reserve(b, 1000, after, now); !ok {
		t.Fatal("within quota refused")
	}
	c := newSlot("a@x", 400, now)
	q, ok, _ := st.reserve(c, 1000, after, now)
	if ok || q.used != 800 || !q.retry.Equal(b.PutExpires) {
		t.Fatalf("over quota: %v %+v (b expires %v)", ok, q, b.PutExpires)
	}
	d := newSlot("a@x", 900, now)
	q, ok, _ = st.reserve(d, 1000, after, now)
	if ok || !q.retry.Equal(now.Add(after)) {
		t.Fatalf("needs both freed: %v %+v", ok, q)
	}
	// Another user is not affected.
	if _, ok, _ := st.reserve(newSlot("b@x", 1000, now), 1000, after, now); !ok {
		t.Fatal("other user refused")
	}
	// After b's URL expired it no longer counts, and the sweeper drops it.
	later := b.PutExpires.Add(time.Second)
	if _, ok, _ := st.reserve(newSlot("a@x", 500, later), 1000, after, later); !ok {
		t.Fatal("expired pending slot still counted")
	}
	if n := st.sweep(later, after); n != 2 { // b and b@x's slot
		t.Fatalf("swept %d", n)
	}
	if _, ok := st.lookup(b.ID); ok {
		t.Fatal("expired pending slot kept")
	}
	if _, err := os.Stat(st.metaPath(b.ID)); !os.IsNotExist(err) {
		t.Fatal("its .meta kept")
	}
	// The stored file goes when it expires.
	if n := st.sweep(now.Add(after), after); n != 2 { // a and the one reserved at later
		t.Fatalf("swept %d", n)
	}
	if _, err := os.Stat(st.dataPath(a.ID)); !os.IsNotExist(err) {
		t.Fatal("expired file kept")
	}
	if len(st.owners) != 0 || len(st.slots) != 0 {
		t.Fatalf("index not empty: %v", st.slots)
	}
}

func TestToken(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	now := time.Unix(1_700_000_000, 0)
	s := &slot{ID: newID(), Owner: "a@x", Name: "n", Size: 3, Type: "text/plain", PutExpires: now.Add(time.Minute)}
	tok := token(secret, s)
	if err := checkToken(secret, s, tok, now); err != nil {
		t.Fatal(err)
	}
	if err := checkToken(secret, s, "bearer "+tok[7:], now); err != nil {
		t.Fatal("scheme is case-insensitive:", err)
	}
	if err := checkToken(secret, s, tok, s.PutExpires); err != errTokenExpired {
		t.Fatalf("at expiry: %v", err)
	}
	for _, change := range []func(*slot){
		func(s *slot) { s.ID = newID() },
		func(s *slot) { s.Owner = "b@x" },
		func(s *slot) { s.Name = "m" },
		func(s *slot) { s.Size = 4 },
		func(s *slot) { s.Type = "text/html" },
	} {
		o := *s
		change(&o)
		if err := checkToken(secret, &o, tok, now); err != errForged {
			t.Errorf("token accepted for %+v: %v", o, err)
		}
	}
	if err := checkToken(bytes.Repeat([]byte{8}, 32), s, tok, now); err != errForged {
		t.Error("token accepted with another secret")
	}
	// Moving the expiry breaks the MAC.
	raw, _ := base64.RawURLEncoding.DecodeString(tok[7:])
	raw[7]++
	if err := checkToken(secret, s, "Bearer "+base64.RawURLEncoding.EncodeToString(raw), now); err != errForged {
		t.Errorf("a token with a changed expiry: %v", err)
	}
	o := *s
	o.PutExpires = s.PutExpires.Add(time.Hour)
	if err := checkToken(secret, s, token(secret, &o), now.Add(2*time.Minute)); err != errForged {
		t.Errorf("a token with a later expiry: %v", err)
	}
}

func TestSecretPersisted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "upload-secret")
	a, err := loadSecret(p)
	if err != nil || len(a) != 32 {
		t.Fatal(err)
	}
	b, _ := loadSecret(p)
	if !bytes.Equal(a, b) {
		t.Fatal("secret changed")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"photo.jpg":              "photo.jpg",
		"très cool.jpg":          "très cool.jpg",
		"../../etc/passwd":       ".._.._etc_passwd",
		`a\b`:                    "a_b",
		"a\x00b\nc":              "a_b_c",
		"evil\u202egpj.exe":      "evil_gpj.exe",
		"bad\xffutf8":            "bad_utf8",
		"  spaced  ":             "spaced",
		"":                       "",
		".":                      "",
		"..":                     "",
		strings.Repeat("a", 256): "",
	} {
		got, ok := cleanName(in)
		if got != want || ok != (want != "") {
			t.Errorf("cleanName(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestTypePatterns(t *testing.T) {
	c := &Config{Allow: []string{"image/*", "text/plain"}, Deny: []string{"image/svg+xml"}}
	for mt, want := range map[string]bool{
		"image/png": true, "image/svg+xml": false, "text/plain": true, "text/html": false, "application/pdf": false,
	} {
		if c.typeAllowed(mt) != want {
			t.Errorf("%s: %v", mt, !want)
		}
	}
	for p, want := range map[string]bool{
		"image/*": true, "*/*": true, "*": true, "image/png": true, "Image/PNG": true,
		"image": false, "*/png": false, "image/x-*": false, "image/png; q=1": false, "": false, "/": false,
	} {
		if validPattern(p) != want {
			t.Errorf("validPattern(%q) = %v", p, !want)
		}
	}
}

func TestParsePath(t *testing.T) {
	id := newID()
	for p, ok := range map[string]bool{
		"/upload/" + id + "/a.txt":              true,
		"/upload/" + id + "/a%20b.txt":          true,
		"/upload/" + id + "/a%2fb":              false,
		"/upload/" + id + "/":                   false,
		"/upload/" + id:                         false,
		"/upload/" + id + "x/a":                 false,
		"/upload/" + strings.ToUpper(id) + "/a": false,
		"/upload/" + id + "/a/b":                false,
		"/other/" + id + "/a":                   false,
		"/upload/" + id + "/%zz":                false,
	} {
		got := false
		if u, err := url.ParseRequestURI(p); err == nil {
			_, _, got = parsePath(u)
		}
		if got != ok {
			t.Errorf("%s: %v", p, got)
		}
	}
}
