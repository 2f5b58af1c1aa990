package turn

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/xmppd/xmppd/internal/lograte"
)

// lockedBuffer is a log destination written by the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// TestRefusedPacketsDoNotFloodTheLog: a client retransmitting an Allocate
// with a wrong password a thousand times gets a thousand 401 answers, and
// every refusal is counted, but the log holds a bounded number of lines,
// the later ones saying how many were left out.
func TestRefusedPacketsDoNotFloodTheLog(t *testing.T) {
	var logs lockedBuffer
	s := startServer(t, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	user, _, _ := s.Credentials("mallory@example.org", time.Hour)
	conn, err := net.DialUDP("udp4", nil, s.UDPAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	const packets = 1000
	start := time.Now()
	buf := make([]byte, 1500)
	for i := range packets {
		req, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.NewUsername(user), stun.NewRealm(testRealm), stun.NewNonce("nonce"),
			stun.NewLongTermIntegrity(user, testRealm, "wrong password"), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		// Send, and retransmit as a real client does until the answer
		// comes (UDP may lose a packet on a loaded machine).
		for answered := false; !answered; {
			if _, err := conn.Write(req.Raw); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			var resp stun.Message
			resp.Raw = append([]byte(nil), buf[:n]...)
			if resp.Decode() != nil || resp.TransactionID != req.TransactionID {
				continue // an answer to an earlier retransmission
			}
			var code stun.ErrorCodeAttribute
			if code.GetFrom(&resp) != nil || code.Code != stun.CodeUnauthorized {
				t.Fatalf("packet %d answered %v, want 401", i, resp)
			}
			answered = true
		}
	}
	elapsed := time.Since(start)

	if got := s.Stats().AuthFailures; got < packets {
		t.Errorf("AuthFailures = %d, want at least %d: every refusal is counted", got, packets)
	}
	lines := logs.lines("turn: credentials refused")
	// At most Burst lines per window that the run spanned.
	bound := lograte.Burst * (int(elapsed/lograte.Window) + 1)
	if len(lines) == 0 || len(lines) > bound {
		t.Fatalf("%d log lines for %d refused packets in %v, want 1..%d", len(lines), packets, elapsed, bound)
	}
	t.Logf("%d log lines for %d refusals in %v", len(lines), packets, elapsed)
}
