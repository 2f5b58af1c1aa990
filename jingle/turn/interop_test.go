package turn

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// uclient finds coturn's turnutils_uclient: the test fails without it when
// XMPPD_INTEROP=1 (CI installs Debian's coturn), and is skipped otherwise.
func uclient(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("turnutils_uclient")
	if err != nil {
		const msg = "interop client missing, test not run: coturn's turnutils_uclient not in PATH (apt-get install coturn)"
		if os.Getenv("XMPPD_INTEROP") == "1" {
			t.Fatal(msg + " (XMPPD_INTEROP=1 requires every client; `.ci/run` installs them)")
		}
		t.Skip(msg + " (`.ci/run` installs it and runs the suite with XMPPD_INTEROP=1; by hand: XMPPD_INTEROP=1 go test -race ./jingle/turn/)")
	}
	return p
}

var totals = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)

// runUclient runs client-to-client relaying (-y: two allocations that send
// to each other's relayed address; -c: no RTCP pair) with 5 messages each.
func runUclient(t *testing.T, bin string, port int, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]string{"-y", "-c", "-n", "5", "-l", "160", "-p", strconv.Itoa(port)}, args...)
	all = append(all, "127.0.0.1")
	out, err := exec.CommandContext(ctx, bin, all...).CombinedOutput()
	return string(out), err
}

func TestInteropCoturnClient(t *testing.T) {
	bin := uclient(t)
	user := "alice@example.org"
	for _, tc := range []struct {
		name  string
		flags []string
		addr  func(*Server) net.Addr
	}{
		{"udp", nil, (*Server).UDPAddr},
		{"tcp", []string{"-t"}, (*Server).TCPAddr},
		{"tls", []string{"-t", "-S"}, (*Server).TLSAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, nil)
			// -W: uclient computes the TURN REST credentials itself
			// (EXPIRY:USER, HMAC-SHA1 with the secret) as coturn's REST API does.
			args := append(append([]string{}, tc.flags...), "-W", testSecret, "-u", user)
			out, err := runUclient(t, bin, port(tc.addr(s)), args...)
			if err != nil {
				t.Fatalf("turnutils_uclient: %v\n%s", err, out)
			}
			m := totals.FindAllStringSubmatch(out, -1)
			if len(m) == 0 {
				t.Fatalf("no totals in:\n%s", out)
			}
			last := m[len(m)-1]
			if last[1] == "0" || last[1] != last[2] {
				t.Fatalf("sent %s, received %s:\n%s", last[1], last[2], out)
			}
			sent, _ := strconv.Atoi(last[1])
			st := s.Stats()
			if st.AllocationsTotal < 2 || st.PacketsToPeers < uint64(sent) || st.PacketsFromPeers < uint64(sent) || st.AuthFailures != 0 {
				t.Errorf("uclient relayed %d messages; server stats %+v", sent, st)
			}
		})
	}
}

func TestInteropCoturnClientRefused(t *testing.T) {
	bin := uclient(t)
	past, pastPass := CredentialsUntil(testSecret, "alice@example.org", time.Now().Add(-time.Minute))
	future, _ := CredentialsUntil(testSecret, "alice@example.org", time.Now().Add(time.Hour))
	for _, tc := range []struct{ name, user, pass string }{
		{"forged", future, "Zm9yZ2VkIGJ5IG1hbGxvcnk="},
		{"other secret", future, Password("not-the-secret", future)},
		{"expired", past, pastPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, nil)
			out, err := runUclient(t, bin, port(s.UDPAddr()), "-u", tc.user, "-w", tc.pass)
			if err == nil {
				t.Fatalf("turnutils_uclient succeeded:\n%s", out)
			}
			if st := s.Stats(); st.AllocationsTotal != 0 || st.AuthFailures == 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	t.Run("loopback peer under the default policy", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, func(o *Options) { o.Allow = nil })
		out, err := runUclient(t, bin, port(s.UDPAddr()), "-W", testSecret, "-u", "alice@example.org")
		st := s.Stats()
		if st.PermissionsRefused == 0 || st.PacketsToPeers != 0 || st.PacketsFromPeers != 0 {
			t.Errorf("stats %+v (uclient: %v)\n%s", st, err, out)
		}
		if m := totals.FindAllStringSubmatch(out, -1); err == nil && len(m) > 0 && m[len(m)-1][2] != "0" {
			t.Errorf("messages came through a refused relay: %s", fmt.Sprint(m[len(m)-1]))
		}
	})
}
