package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// goMem is a Go server's own memory accounting (runtime.MemStats), read
// from its net/http/pprof heap profile after a forced collection.
type goMem struct {
	StackInuse   int64 `json:"stack_inuse"`
	HeapAlloc    int64 `json:"heap_alloc"` // live objects after the collection
	HeapInuse    int64 `json:"heap_inuse"`
	HeapIdle     int64 `json:"heap_idle"` // freed spans, returned or not
	HeapReleased int64 `json:"heap_released"`
	Sys          int64 `json:"sys"`
}

// readGoMem fetches base/debug/pprof/heap?gc=1&debug=1 (a server built
// with net/http/pprof, see docs/BENCHMARKS.md) and parses its MemStats.
func readGoMem(base string) (goMem, error) {
	var m goMem
	cl := http.Client{Timeout: time.Minute}
	resp, err := cl.Get(strings.TrimRight(base, "/") + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("%s: %s", base, resp.Status)
	}
	fields := map[string]*int64{
		"HeapAlloc": &m.HeapAlloc, "HeapInuse": &m.HeapInuse, "HeapIdle": &m.HeapIdle,
		"HeapReleased": &m.HeapReleased, "Sys": &m.Sys, "Stack": &m.StackInuse,
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// "# HeapInuse = 123", "# Stack = inuse / sys"
		name, val, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if p := fields[name]; ok && p != nil {
			f := strings.Fields(val)
			if len(f) > 0 {
				*p, _ = strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	if m.HeapInuse == 0 {
		return m, fmt.Errorf("%s: no runtime.MemStats in the heap profile", base)
	}
	return m, sc.Err()
}

// perSession is (m - base) / n in KiB, field by field.
func (m goMem) perSession(base goMem, n int) goMemKiB {
	f := func(a, b int64) float64 { return float64(a-b) / 1024 / float64(n) }
	return goMemKiB{
		StackInuse: f(m.StackInuse, base.StackInuse), HeapAlloc: f(m.HeapAlloc, base.HeapAlloc),
		HeapInuse: f(m.HeapInuse, base.HeapInuse), HeapIdle: f(m.HeapIdle, base.HeapIdle),
		HeapReleased: f(m.HeapReleased, base.HeapReleased),
	}
}

type goMemKiB struct {
	StackInuse   float64 `json:"stack_inuse"`
	HeapAlloc    float64 `json:"heap_alloc"`
	HeapInuse    float64 `json:"heap_inuse"`
	HeapIdle     float64 `json:"heap_idle"`
	HeapReleased float64 `json:"heap_released"`
}

// ticketCaches gives every user a TLS session cache of its own (they all
// dial the same server name, and a real client resumes its own session).
type ticketCaches struct {
	mu      sync.Mutex
	m       map[int]tls.ClientSessionCache
	resumed atomic.Int64
}

// count is a tls.Config.VerifyConnection that counts resumed handshakes.
func (t *ticketCaches) count(cs tls.ConnectionState) error {
	if cs.DidResume {
		t.resumed.Add(1)
	}
	return nil
}

func (t *ticketCaches) of(user int) tls.ClientSessionCache {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[user]
	if c == nil {
		c = tls.NewLRUClientSessionCache(2)
		t.m[user] = c
	}
	return c
}
