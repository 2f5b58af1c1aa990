package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/wire"
)

// daemon is a running xmppd binary.
type daemon struct {
	cmd   *exec.Cmd
	addr  string
	lines chan string
}

func startDaemon(t *testing.T, bin, cfgFile, data string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfgFile, "-data", data)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, lines: make(chan string, 1000)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case d.lines <- sc.Text():
			default:
			}
		}
	}()
	re := regexp.MustCompile(`c2s listening" address=(\S+)`)
	deadline := time.After(30 * time.Second)
	for d.addr == "" {
		select {
		case l := <-d.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				d.addr = m[1]
			}
		case <-deadline:
			t.Fatal("xmppd did not start")
		}
	}
	return d
}

func (d *daemon) config(user string) client.Config {
	return client.Config{Addr: d.addr, Domain: "localhost", Username: user, Password: "password-" + user, Resource: "r",
		TLS: &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}} //nolint:gosec // self-signed
}

// TestKillNineLosesNothingAcked: kill -9 of the server while messages flow
// between 100 sessions; after a restart every message the server had acked
// to its sender (XEP-0198) reaches its recipient: it was delivered before
// the crash, or is in offline storage or in the archive (MAM).
func TestKillNineLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	bin := xmppd(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "xmppd.xml")
	cfg := `<xmppd>
  <hosts><host name="localhost"/></hosts>
  <listeners><c2s address="127.0.0.1:0" tls="starttls"/></listeners>
  <auth failure-delay="0s" ip-failures-per-minute="0"/>
  <registration enabled="true" per-ip-per-hour="0"/>
  <limits max-connections-per-ip="0" max-sessions-per-account="0"/>
  <modules><offline max-messages="0"/></modules>
</xmppd>
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	d := startDaemon(t, bin, cfgFile, data)
	const n = 100
	users := make([]string, n)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client.Register(ctx, d.config(u)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	clients := make([]*client.Client, n)
	for i, u := range users {
		c, err := client.Dial(ctx, d.config(u))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.EnableSM(10*time.Second, false); err != nil {
			t.Fatal(err)
		}
		// Every stanza after <enable/> is counted: SendStanza keeps the
		// client's count equal to the server's.
		if _, err := c.SendStanza("<presence/>"); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	// Every session sends to random others; the body names sender and seq.
	type sent struct {
		to   int
		body string
		seq  uint32
	}
	sends := make([][]sent, n)
	received := make([]map[string]bool, n)
	var rmu sync.Mutex
	for i := range received {
		received[i] = map[string]bool{}
	}
	stop := make(chan struct{})
	var senders, readers sync.WaitGroup
	for i, c := range clients {
		readers.Add(1)
		go func() { // reader
			defer readers.Done()
			for st := range c.Incoming() {
				if st.Kind == wire.KindMessage {
					rmu.Lock()
					received[i][bodyText(st.Raw)] = true
					rmu.Unlock()
				}
			}
		}()
		senders.Add(1)
		go func() { // sender
			defer senders.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				to := rand.IntN(n - 1)
				if to >= i {
					to++
				}
				body := fmt.Sprintf("m-%d-%d", i, k)
				seq, err := c.SendStanza("<message type='chat' to='" + users[to] + "@localhost'><body>" + body + "</body></message>")
				if err != nil {
					return
				}
				sends[i] = append(sends[i], sent{to, body, seq})
				if k%5 == 4 {
					_ = c.Send("<r xmlns='urn:xmpp:sm:3'/>")
				}
				time.Sleep(time.Duration(5+rand.IntN(10)) * time.Millisecond)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
	close(stop)
	senders.Wait()
	for _, c := range clients {
		_ = c.Abort()
	}
	readers.Wait()
	// What must survive: every message covered by its sender's last ack.
	must := make([][]string, n)
	total := 0
	for i, c := range clients {
		acked := c.Acked()
		for _, s := range sends[i] {
			if s.seq <= acked {
				must[s.to] = append(must[s.to], s.body)
				total++
			}
		}
	}
	if total < 100 {
		t.Fatalf("only %d messages were acked before the kill; the test proves nothing", total)
	}
	d2 := startDaemon(t, bin, cfgFile, data)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	var lmu sync.Mutex
	lost := 0
	var after sync.WaitGroup
	for i, u := range users {
		after.Add(1)
		go func() {
			defer after.Done()
			c, err := client.Dial(ctx2, d2.config(u))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			got := received[i]
			// Offline messages flood in while the server handles the
			// presence: the answer to the ping sent after it comes after
			// the whole flood.
			_ = c.Send("<presence/>")
			_ = c.Send("<iq type='get' id='after-flood'><ping xmlns='urn:xmpp:ping'/></iq>")
			for {
				st, err := c.Next(30 * time.Second)
				if err != nil {
					t.Errorf("%s: no answer to the ping after the offline flood: %v", u, err)
					return
				}
				if st.Kind == wire.KindIQ && st.ID == "after-flood" {
					break
				}
				if st.Kind == wire.KindMessage {
					got[bodyText(st.Raw)] = true
				}
			}
			for _, b := range fetchArchive(t, c) {
				got[b] = true
			}
			lmu.Lock()
			defer lmu.Unlock()
			for _, b := range must[i] {
				if !got[b] {
					lost++
					if lost <= 5 {
						t.Errorf("%s never got acked message %s", u, b)
					}
				}
			}
		}()
	}
	after.Wait()
	if lost > 0 {
		t.Fatalf("%d of %d acked messages lost", lost, total)
	}
	t.Logf("%d acked messages, none lost", total)
}

func bodyText(raw []byte) string {
	s := string(raw)
	i := strings.Index(s, "<body>")
	j := strings.Index(s, "</body>")
	if i < 0 || j < i {
		return ""
	}
	return s[i+6 : j]
}

// fetchArchive pages through the user's whole MAM archive and returns the
// bodies of the archived messages.
func fetchArchive(t *testing.T, c *client.Client) []string {
	t.Helper()
	var bodies []string
	after := ""
	for page := 0; page < 1000; page++ {
		id := "mam" + strconv.Itoa(page)
		set := "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max>"
		if after != "" {
			set += "<after>" + after + "</after>"
		}
		set += "</set>"
		if err := c.Send("<iq type='set' id='" + id + "'><query xmlns='urn:xmpp:mam:2' queryid='" + id + "'>" + set + "</query></iq>"); err != nil {
			t.Fatal(err)
		}
		for {
			st, err := c.Next(10 * time.Second)
			if err != nil {
				t.Errorf("MAM page %d: %v", page, err)
				return bodies
			}
			if st.Kind == wire.KindMessage {
				// Archive results, and the offline flood meanwhile.
				if b := bodyText(st.Raw); b != "" {
					bodies = append(bodies, b)
				}
				continue
			}
			if st.Kind == wire.KindIQ && st.ID == id {
				if st.Type != "result" {
					t.Errorf("MAM query failed: %s", st.Raw)
					return bodies
				}
				raw := string(st.Raw)
				if strings.Contains(raw, "complete='true'") || strings.Contains(raw, "complete=\"true\"") {
					return bodies
				}
				i := strings.Index(raw, "<last>")
				j := strings.Index(raw, "</last>")
				if i < 0 || j < i {
					return bodies
				}
				after = raw[i+6 : j]
				break
			}
		}
	}
	return bodies
}
