package upload_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/xmppd/xmppd/upload"
)

const benchSize = 256 << 20

// loop is an endless reader over a block of random bytes, so generating the
// upload costs next to nothing.
type loop struct {
	b    []byte
	off  int
	left int64
}

func newLoop(n int64) *loop {
	b := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(b)
	return &loop{b: b, left: n}
}

func (l *loop) Read(p []byte) (int, error) {
	if l.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	l.left -= int64(n)
	return n, nil
}

// BenchmarkTransfer measures a 256 MiB upload (PUT, which ends with fsync)
// and download (GET) over loopback HTTP against cp of the same file on the
// same file system, plain and followed by sync of the copy. Every
// iteration runs each operation once, in turn, and keeps every copy and
// upload (the page cache fills alike for all), so a noisy machine affects
// them alike. The uploads and downloads run with the Go client in this
// process and with curl; "/cp" metrics are speed as a fraction of cp's
// (1 = as fast), "/cp+sync" of cp followed by sync. Use -benchtime=5x.
func BenchmarkTransfer(b *testing.B) {
	e := start(b, func(c *upload.Config) { c.MaxFileSize = 1 << 30; c.Quota = 0 })
	dir := filepath.Dir(string(e.cfg.Dir))
	src := filepath.Join(dir, "cp-src")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, newLoop(benchSize)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	_, haveCurl := exec.LookPath("curl")
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v %s", name, err, out)
		}
	}
	curl := func(args ...string) {
		run("curl", append([]string{"-sS", "-f", "-o", "/dev/null"}, args...)...)
	}
	ops := []string{"cp", "cp+sync", "put", "get", "put-curl", "get-curl"}
	total := map[string]time.Duration{}
	timed := func(op string, fn func()) {
		t0 := time.Now()
		fn()
		total[op] += time.Since(t0)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timed("cp", func() { run("cp", src, filepath.Join(dir, fmt.Sprintf("cp-%d", i))) })
		timed("cp+sync", func() {
			dst := filepath.Join(dir, fmt.Sprintf("cps-%d", i))
			run("cp", src, dst)
			run("sync", dst)
		})
		s := e.slot("bench.bin", benchSize, "application/octet-stream")
		timed("put", func() {
			req, _ := http.NewRequest("PUT", s.put, io.NopCloser(newLoop(benchSize)))
			req.ContentLength = benchSize
			req.Header.Set("Authorization", s.auth)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := httpc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Fatalf("PUT: %d", resp.StatusCode)
			}
		})
		timed("get", func() {
			resp, err := httpc.Get(s.get)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != benchSize {
				b.Fatalf("GET: %d bytes, %v", n, err)
			}
		})
		if haveCurl != nil {
			continue
		}
		s = e.slot("bench.bin", benchSize, "application/octet-stream")
		timed("put-curl", func() {
			curl("-T", src, "-H", "Authorization: "+s.auth, "-H", "Content-Type: application/octet-stream", s.put)
		})
		timed("get-curl", func() { curl(s.get) })
	}
	b.StopTimer()
	mbs := func(op string) float64 { return float64(b.N) * benchSize / total[op].Seconds() / 1e6 }
	for _, op := range ops {
		if total[op] == 0 {
			continue
		}
		b.ReportMetric(mbs(op), op+"-MB/s")
		if op != "cp" && op != "cp+sync" {
			b.ReportMetric(mbs(op)/mbs("cp"), op+"/cp")
			b.ReportMetric(mbs(op)/mbs("cp+sync"), op+"/cp+sync")
		}
	}
	b.ReportMetric(0, "ns/op")
}
