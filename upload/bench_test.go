package upload_test

import (
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
// same file system (plain, and followed by sync of the copy). Sub-benchmarks
// put and get report x-cp and x-cp+sync: their speed as a fraction of
// cp's (1 = as fast as cp). Run with -benchtime=5x or so: each PUT
// keeps its 256 MiB until the benchmark ends.
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
	var cpTime, cpSyncTime time.Duration
	cp := func(b *testing.B, sync bool) time.Duration {
		b.SetBytes(benchSize)
		for i := 0; i < b.N; i++ {
			dst := filepath.Join(dir, "cp-dst")
			if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v %s", err, out)
			}
			if sync {
				if out, err := exec.Command("sync", dst).CombinedOutput(); err != nil {
					b.Fatalf("sync: %v %s", err, out)
				}
			}
			b.StopTimer()
			os.Remove(dst)
			b.StartTimer()
		}
		return b.Elapsed() / time.Duration(b.N)
	}
	b.Run("cp", func(b *testing.B) { cpTime = cp(b, false) })
	b.Run("cp+sync", func(b *testing.B) { cpSyncTime = cp(b, true) })
	report := func(b *testing.B) {
		op := b.Elapsed() / time.Duration(b.N)
		if cpTime > 0 {
			b.ReportMetric(float64(cpTime)/float64(op), "x-cp")
		}
		if cpSyncTime > 0 {
			b.ReportMetric(float64(cpSyncTime)/float64(op), "x-cp+sync")
		}
	}
	var last slot
	b.Run("put", func(b *testing.B) {
		b.SetBytes(benchSize)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s := e.slot("bench.bin", benchSize, "application/octet-stream")
			req, _ := http.NewRequest("PUT", s.put, io.NopCloser(newLoop(benchSize)))
			req.ContentLength = benchSize
			req.Header.Set("Authorization", s.auth)
			req.Header.Set("Content-Type", "application/octet-stream")
			b.StartTimer()
			resp, err := httpc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Fatalf("PUT: %d", resp.StatusCode)
			}
			last = s
		}
		report(b)
	})
	curl := func(b *testing.B, args ...string) {
		b.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "-f", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).CombinedOutput()
		if err != nil {
			b.Fatalf("curl: %v %s", err, out)
		}
	}
	if _, err := exec.LookPath("curl"); err == nil {
		b.Run("put-curl", func(b *testing.B) {
			b.SetBytes(benchSize)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := e.slot("bench.bin", benchSize, "application/octet-stream")
				b.StartTimer()
				curl(b, "-T", src, "-H", "Authorization: "+s.auth, "-H", "Content-Type: application/octet-stream", s.put)
				last = s
			}
			report(b)
		})
		b.Run("get-curl", func(b *testing.B) {
			b.SetBytes(benchSize)
			for i := 0; i < b.N; i++ {
				curl(b, last.get)
			}
			report(b)
		})
	}
	if last.get == "" {
		b.Skip("no file uploaded")
	}
	b.Run("get", func(b *testing.B) {
		b.SetBytes(benchSize)
		for i := 0; i < b.N; i++ {
			resp, err := httpc.Get(last.get)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != benchSize {
				b.Fatalf("GET: %d bytes, %v", n, err)
			}
		}
		report(b)
	})
}
