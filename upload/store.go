package upload

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The upload directory is its own small index, so the module needs no
// table in storage/:
//
//	DIR/ab/ab12…ef.meta   the slot (JSON), written when the slot is handed out
//	DIR/ab/ab12…ef.part   the upload in progress (created O_EXCL: one writer)
//	DIR/ab/ab12…ef        the file, renamed from .part once complete and synced
//
// "ab" is the first two hex digits of the 128-bit random slot id, so no
// directory grows beyond 1/256 of the files. Names on disk come only from
// ids the server generated; the client's file name lives in the .meta file
// and in URLs, never in a path. At startup every .meta file is read into
// memory (about 200 bytes per file); .part and temporary files left by a
// crash are removed, and so is any id-named file without its .meta.

type slotState uint8

const (
	statePending   slotState = iota // handed out, nothing uploaded yet
	stateUploading                  // a PUT is writing the .part file
	stateStored                     // complete; served by GET
)

// slot is one upload slot and, once used, the stored file.
type slot struct {
	ID    string `json:"id"`
	Owner string `json:"owner"` // bare JID
	Name  string `json:"name"`  // file name as requested (sanitized)
	Size  int64  `json:"size"`
	// Type is the content type given in the slot request ("" if none),
	// canonicalized; Served is the one served (set at upload).
	Type       string    `json:"type,omitempty"`
	Served     string    `json:"served,omitempty"`
	Created    time.Time `json:"created"`
	PutExpires time.Time `json:"put_expires"`
	Uploaded   time.Time `json:"uploaded,omitzero"`

	state slotState
}

// expires returns when a stored file expires (zero: never).
func (s *slot) expires(after time.Duration) time.Time {
	if after <= 0 || s.state != stateStored {
		return time.Time{}
	}
	return s.Uploaded.Add(after)
}

// counts reports whether the slot counts against its owner's quota at now.
func (s *slot) counts(now time.Time, after time.Duration) bool {
	switch s.state {
	case stateUploading:
		return true
	case statePending:
		return now.Before(s.PutExpires)
	}
	e := s.expires(after)
	return e.IsZero() || now.Before(e)
}

type store struct {
	dir string
	log *slog.Logger

	mu     sync.Mutex
	slots  map[string]*slot
	owners map[string]map[string]*slot // owner → id → slot
}

const idLen = 32 // hex digits of a slot id

func newID() string {
	var b [idLen / 2]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID accepts exactly what newID produces: 32 lowercase hex digits.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (st *store) shard(id string) string { return filepath.Join(st.dir, id[:2]) }
func (st *store) dataPath(id string) string {
	return filepath.Join(st.dir, id[:2], id)
}
func (st *store) metaPath(id string) string { return st.dataPath(id) + ".meta" }
func (st *store) partPath(id string) string { return st.dataPath(id) + ".part" }

// openStore creates dir if needed and loads the index.
func openStore(dir string, log *slog.Logger) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload directory: %w", err)
	}
	st := &store{dir: dir, log: log, slots: map[string]*slot{}, owners: map[string]map[string]*slot{}}
	if err := st.load(); err != nil {
		return nil, fmt.Errorf("upload directory %s: %w", dir, err)
	}
	return st, nil
}

func isHex2(s string) bool {
	return len(s) == 2 && validID(s+strings.Repeat("0", idLen-2))
}

// load reads every .meta file and tidies up after a crash.
func (st *store) load() error {
	shards, err := os.ReadDir(st.dir)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() || !isHex2(sh.Name()) {
			continue
		}
		sdir := filepath.Join(st.dir, sh.Name())
		ents, err := os.ReadDir(sdir)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, e := range ents {
			have[e.Name()] = true
		}
		for _, e := range ents {
			name := e.Name()
			id, ext, _ := strings.Cut(name, ".")
			if !validID(id) || id[:2] != sh.Name() {
				continue // not ours
			}
			p := filepath.Join(sdir, name)
			switch ext {
			case "meta":
				s, err := readMeta(p)
				if err != nil || s.ID != id {
					st.log.Warn("upload: unreadable slot, removed", "file", p, "error", err)
					_ = os.Remove(p)
					_ = os.Remove(filepath.Join(sdir, id))
					continue
				}
				s.state = statePending
				if have[id] {
					s.state = stateStored
					if s.Uploaded.IsZero() || s.Served == "" {
						// The .meta was not rewritten: should not happen
						// (it is written before the rename), but serve it.
						if fi, err := os.Stat(filepath.Join(sdir, id)); err == nil {
							s.Uploaded = fi.ModTime()
						}
						s.Served = servedType(s.Type)
					}
				} else {
					s.Uploaded = time.Time{}
				}
				st.add(s)
			case "":
				if !have[id+".meta"] {
					st.log.Warn("upload: file without a slot, removed", "file", p)
					_ = os.Remove(p)
				}
			default: // .part, .meta.tmp: an interrupted write
				_ = os.Remove(p)
			}
		}
	}
	return nil
}

func readMeta(path string) (*slot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := new(slot)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	return s, nil
}

// writeMeta replaces the slot's .meta file atomically (temporary file,
// rename), synced before the rename if durable. A new slot's need not be:
// if a crash loses it, the client's PUT is refused and it asks again.
func (st *store) writeMeta(s *slot, durable bool) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	p := st.metaPath(s.ID)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func (st *store) add(s *slot) {
	st.slots[s.ID] = s
	m := st.owners[s.Owner]
	if m == nil {
		m = map[string]*slot{}
		st.owners[s.Owner] = m
	}
	m[s.ID] = s
}

func (st *store) drop(s *slot) {
	delete(st.slots, s.ID)
	if m := st.owners[s.Owner]; m != nil {
		delete(m, s.ID)
		if len(m) == 0 {
			delete(st.owners, s.Owner)
		}
	}
}

// quota is what a new slot of size would need from owner's quota.
type quotaCheck struct {
	used  int64
	retry time.Time // when enough is freed (zero: unknown/never)
}

// reserve records a new slot for owner if its size fits in quota (0 =
// unlimited); otherwise it reports the usage and when to retry.
func (st *store) reserve(s *slot, quota int64, expireAfter time.Duration, now time.Time) (quotaCheck, bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var q quotaCheck
	type release struct {
		at   time.Time
		size int64
	}
	var frees []release
	for _, o := range st.owners[s.Owner] {
		if !o.counts(now, expireAfter) {
			continue
		}
		q.used += o.Size
		switch o.state {
		case statePending:
			frees = append(frees, release{o.PutExpires, o.Size})
		case stateStored:
			if e := o.expires(expireAfter); !e.IsZero() {
				frees = append(frees, release{e, o.Size})
			}
		}
	}
	if quota > 0 && q.used+s.Size > quota {
		sort.Slice(frees, func(i, j int) bool { return frees[i].at.Before(frees[j].at) })
		need := q.used + s.Size - quota
		for _, f := range frees {
			need -= f.size
			if need <= 0 {
				q.retry = f.at
				break
			}
		}
		return q, false, nil
	}
	// Recorded in memory now (the quota sees it), on disk outside the lock.
	st.add(s)
	st.mu.Unlock()
	err := os.MkdirAll(st.shard(s.ID), 0o700)
	if err == nil {
		err = st.writeMeta(s, false)
	}
	st.mu.Lock()
	if err != nil {
		st.drop(s)
		return q, false, err
	}
	return q, true, nil
}

// lookup returns a copy of the slot with id.
func (st *store) lookup(id string) (slot, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.slots[id]
	if !ok {
		return slot{}, false
	}
	return *s, true
}

var (
	errUsed    = errors.New("upload: slot already used")
	errNoSlot  = errors.New("upload: no such slot")
	errExpired = errors.New("upload: slot expired")
)

// claim moves a pending slot to uploading and creates its .part file. Only
// one PUT can hold a slot; a stored one is never written again.
func (st *store) claim(id string, now time.Time) (*os.File, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.slots[id]
	switch {
	case !ok:
		return nil, errNoSlot
	case s.state != statePending:
		return nil, errUsed
	case !now.Before(s.PutExpires):
		return nil, errExpired
	}
	if _, err := os.Lstat(st.dataPath(id)); err == nil {
		return nil, errUsed
	}
	f, err := os.OpenFile(st.partPath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, errUsed
	}
	if err != nil {
		return nil, err
	}
	s.state = stateUploading
	return f, nil
}

// abandon gives a slot back after a failed PUT (the client may try again
// until the PUT URL expires).
func (st *store) abandon(id string) {
	_ = os.Remove(st.partPath(id))
	st.mu.Lock()
	if s, ok := st.slots[id]; ok && s.state == stateUploading {
		s.state = statePending
	}
	st.mu.Unlock()
}

// commit makes a complete, synced .part file the stored file: the .meta
// is rewritten first (upload time, served type), then .part is renamed.
func (st *store) commit(id, served string, now time.Time) error {
	st.mu.Lock()
	s, ok := st.slots[id]
	if !ok || s.state != stateUploading {
		st.mu.Unlock()
		return errNoSlot
	}
	upd := *s
	st.mu.Unlock()
	upd.Served, upd.Uploaded = served, now
	if err := st.writeMeta(&upd, true); err != nil {
		return err
	}
	if err := os.Rename(st.partPath(id), st.dataPath(id)); err != nil {
		return err
	}
	syncDir(st.shard(id))
	st.mu.Lock()
	s.Served, s.Uploaded, s.state = served, now, stateStored
	st.mu.Unlock()
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// sweep removes expired stored files and pending slots whose PUT URL has
// expired; it returns how many it removed.
func (st *store) sweep(now time.Time, expireAfter time.Duration) int {
	var gone []*slot
	st.mu.Lock()
	for _, s := range st.slots {
		switch s.state {
		case statePending:
			if !now.Before(s.PutExpires) {
				gone = append(gone, s)
			}
		case stateStored:
			if e := s.expires(expireAfter); !e.IsZero() && !now.Before(e) {
				gone = append(gone, s)
			}
		}
	}
	for _, s := range gone {
		st.drop(s)
	}
	st.mu.Unlock()
	for _, s := range gone {
		// Data first: a crash in between leaves a .meta without data,
		// which loads as a pending, expired slot and is swept again.
		if err := os.Remove(st.dataPath(s.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			st.log.Warn("upload: removing an expired file", "id", s.ID, "error", err)
		}
		_ = os.Remove(st.partPath(s.ID))
		if err := os.Remove(st.metaPath(s.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			st.log.Warn("upload: removing an expired slot", "id", s.ID, "error", err)
		}
	}
	return len(gone)
}
