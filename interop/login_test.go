package interop

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/server/servertest"
)

// TestSlixmppSCRAM logs slixmpp in with SCRAM over STARTTLS and over direct
// TLS (XEP-0368): the session starts with the mechanism slixmpp picked among
// those it was allowed, it never falls back to PLAIN, and the server binds
// the requested resource.
func TestSlixmppSCRAM(t *testing.T) {
	t.Parallel()
	e := servertest.Start(t, nil)
	e.AddUser("alice", "correct horse")
	for _, tc := range []struct {
		name   string
		direct bool
		mechs  string
		want   string
	}{
		// Offered: SCRAM-SHA-{512,256,1}(-PLUS) and PLAIN; slixmpp takes the
		// strongest it may use.
		{"starttls", false, scramOnly.Mechs, "SCRAM-SHA-512"},
		{"starttls-sha1", false, "SCRAM-SHA-1", "SCRAM-SHA-1"},
		{"directtls", true, scramOnly.Mechs, "SCRAM-SHA-512"},
		{"directtls-sha256", true, "SCRAM-SHA-256", "SCRAM-SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := "slix-" + tc.name
			p := startSlix(t, e, "alice", "correct horse", res, slixOpts{DirectTLS: tc.direct, Mechs: tc.mechs, NoRoster: true})
			s := p.online()
			if got := s.str("mech"); got != tc.want {
				t.Errorf("mechanism = %q, want %q", got, tc.want)
			}
			if got, want := s.str("jid"), "alice@localhost/"+res; got != want {
				t.Errorf("bound JID = %q, want %q", got, want)
			}
			if tls := s.str("tls"); tls != "TLSv1.3" && tls != "TLSv1.2" {
				t.Errorf("TLS version = %q, want TLSv1.2 or TLSv1.3", tls)
			}
			if got := s["direct_tls"] == true; got != tc.direct {
				t.Errorf("direct_tls = %v, want %v", got, tc.direct)
			}
			var attempts []string
			for _, ev := range p.seen {
				if ev.is("auth_attempt") {
					attempts = append(attempts, ev.str("mech"))
				}
			}
			if len(attempts) != 1 || attempts[0] != tc.want {
				t.Errorf("SASL attempts = [%s], want exactly [%q]", quoteList(attempts), tc.want)
			}
			// A round trip after login: the session works.
			p.do(map[string]any{"cmd": "ping"})
			p.send(map[string]any{"cmd": "quit"})
			evs := p.wait(waitEvent)
			if !hasEvent(evs, evNamed("disconnected")) {
				t.Errorf("no clean disconnect")
			}
		})
	}
}

// TestSlixmppSCRAMWrongPassword: every SCRAM attempt with a wrong password
// fails with <not-authorized/> and no session starts.
func TestSlixmppSCRAMWrongPassword(t *testing.T) {
	t.Parallel()
	e := servertest.Start(t, nil)
	e.AddUser("alice", "correct horse")
	p := startSlix(t, e, "alice", "battery staple", "slix", scramOnly)
	evs := p.wait(30 * time.Second)
	checkRefused(t, evs, "not-authorized")
}

func checkRefused(t *testing.T, evs []event, condition string) {
	t.Helper()
	if hasEvent(evs, evNamed("session_start")) {
		t.Fatalf("session started, want authentication refused")
	}
	n := 0
	for _, ev := range evs {
		switch {
		case ev.is("auth_success"):
			t.Errorf("server sent <success/> for %s", ev.str("mech"))
		case ev.is("auth_failure"):
			n++
			if ev.str("condition") != condition {
				t.Errorf("failure for %s: condition %q, want %q", ev.str("mech"), ev.str("condition"), condition)
			}
		case ev.is("auth_attempt") && !strings.HasPrefix(ev.str("mech"), "SCRAM-"):
			t.Errorf("slixmpp tried %s", ev.str("mech"))
		}
	}
	if n == 0 {
		t.Errorf("no SASL <failure/> reported")
	}
}

// TestSlixmppChannelBinding covers slixmpp's channel-binding behaviour,
// which differs from the other clients: it only knows tls-unique.
//
//   - With the -PLUS mechanisms offered, non-PLUS SCRAM from a client that
//     has channel-binding data carries the GS2 flag "y" ("I could bind, I
//     think you cannot"). RFC 5802 §6 requires the server to fail that
//     exchange, since it does support channel binding (downgrade protection).
//   - With <channel-binding>false</channel-binding> no -PLUS is offered, "y"
//     is legitimate and slixmpp with its default settings logs in with
//     SCRAM-SHA-512.
func TestSlixmppChannelBinding(t *testing.T) {
	t.Parallel()
	t.Run("downgrade-refused", func(t *testing.T) {
		t.Parallel()
		e := servertest.Start(t, nil)
		e.AddUser("alice", "correct horse")
		o := scramOnly
		o.ChannelBinding = true
		p := startSlix(t, e, "alice", "correct horse", "slix", o)
		evs := p.wait(30 * time.Second)
		checkRefused(t, evs, "not-authorized")
	})
	t.Run("no-plus-offered", func(t *testing.T) {
		t.Parallel()
		e := servertest.Start(t, func(c *conf.Config) { c.Auth.ChannelBinding = false })
		e.AddUser("alice", "correct horse")
		p := startSlix(t, e, "alice", "correct horse", "slix", slixOpts{ChannelBinding: true, NoRoster: true})
		s := p.online()
		if got := s.str("mech"); got != "SCRAM-SHA-512" {
			t.Errorf("mechanism = %q, want SCRAM-SHA-512", got)
		}
	})
}

// TestSlixmppDefaultConfig: slixmpp left to itself (every mechanism
// offered, its own tls-unique channel binding) logs in to the default
// configuration over TLS 1.3. It tries SCRAM-SHA-512/256/1-PLUS with
// tls-unique, which a TLS 1.3 link cannot provide; the server refuses each
// with <invalid-mechanism/> without counting it as a failed login, so the
// client goes on to SCRAM-SHA-512 with the GS2 flag "y", which is honest
// after such a refusal and accepted. The failure delay is raised to a
// minute: had any attempt been counted as a failed password, the login
// would stall past the test's wait (the default delay is a second).
func TestSlixmppDefaultConfig(t *testing.T) {
	t.Parallel()
	e := servertest.Start(t, func(c *conf.Config) {
		c.Auth = conf.Default(t.TempDir()).Auth
		c.Auth.FailureDelay = time.Minute
	})
	e.AddUser("alice", "correct horse")
	for _, direct := range []bool{false, true} {
		p := startSlix(t, e, "alice", "correct horse", "slix", slixOpts{DirectTLS: direct, ChannelBinding: true, NoRoster: true})
		// Not p.online(): refused -PLUS attempts are expected here.
		s := p.expect("session_start", func(e event) bool {
			if e.is("stream_error") || e.is("disconnected") {
				t.Fatalf("login failed: %v", e)
			}
			return e.is("session_start")
		})
		// A figure, not an assertion: connect to session start, as slixmpp
		// timed it (the event "start" is emitted just before connecting).
		for _, ev := range p.seen {
			if ev.is("start") {
				t0, _ := ev["t"].(float64)
				t1, _ := s["t"].(float64)
				t.Logf("direct TLS %v: connected and logged in within %.0f ms", direct, (t1-t0)*1000)
			}
		}
		if got := s.str("tls"); got != "TLSv1.3" {
			t.Errorf("TLS version = %q, want TLSv1.3", got)
		}
		if got := s.str("mech"); got != "SCRAM-SHA-512" {
			t.Errorf("mechanism = %q, want SCRAM-SHA-512", got)
		}
		var attempts, failures []string
		for _, ev := range p.seen {
			switch {
			case ev.is("auth_attempt"):
				attempts = append(attempts, ev.str("mech"))
			case ev.is("auth_failure"):
				failures = append(failures, ev.str("mech")+":"+ev.str("condition"))
			}
		}
		want := []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512"}
		if strings.Join(attempts, " ") != strings.Join(want, " ") {
			t.Errorf("SASL attempts = [%s], want [%s]", quoteList(attempts), quoteList(want))
		}
		for _, f := range failures {
			if !strings.HasSuffix(f, ":invalid-mechanism") {
				t.Errorf("failure %s, want invalid-mechanism for the -PLUS attempts", f)
			}
		}
		p.do(map[string]any{"cmd": "ping"})
		p.send(map[string]any{"cmd": "quit"})
		p.wait(waitEvent)
	}
}
