package calls_test

import (
	"context"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/jingle/calls"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// recordOf returns the stored record of caller's (a bare JID) call id.
func (x *env) recordOf(t *testing.T, caller, id string) storage.CallRecord {
	t.Helper()
	recs, err := x.Srv.Store.Calls().List(context.Background(), caller, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == id && len(r.Caller) > len(caller) && r.Caller[:len(caller)+1] == caller+"/" {
			return r
		}
	}
	t.Fatalf("no record of %s's call %s in %+v", caller, id, recs)
	return storage.CallRecord{}
}

// sent waits until the server handled what c sent before (a ping round
// trip on c's stream: the stanzas before it were routed, hooks included).
func sent(t *testing.T, c *client.Client) { t.Helper(); syncAll(t, c) }

const success = "<reason xmlns='urn:xmpp:jingle:1'><success/></reason>"

func jingleIQ(to, action, sid string) string {
	return "<iq type='set' id='j-" + action + "-" + sid + "' to='" + to + "'><jingle xmlns='urn:xmpp:jingle:1' action='" + action +
		"' sid='" + sid + "'><reason><success/></reason></jingle></iq>"
}

// A third user who knows a call's id sends every element that could end
// or take it over, to either party: the call goes on, supervised, with
// its record untouched.
func TestThirdPartyCannotEndCall(t *testing.T) {
	x := setup(t, func(c *calls.Config) { c.Grace = time.Second })
	x.connect(t, "call-h")
	x.AddUser("mallory", "secret-pw")
	mallory := x.Login("mallory", "secret-pw", "pc")
	for _, raw := range []string{
		jmi("alice@localhost/phone", "finish", "call-h", success),
		jmi("bob@localhost/phone", "finish", "call-h", success),
		jmi("bob@localhost", "retract", "call-h", ""),
		jmi("alice@localhost/phone", "reject", "call-h", "<reason xmlns='urn:xmpp:jingle:1'><busy/></reason>"),
		jmi("alice@localhost/phone", "proceed", "call-h", ""),
		jingleIQ("alice@localhost/phone", "session-terminate", "call-h"),
		jingleIQ("bob@localhost/phone", "session-terminate", "call-h"),
	} {
		_ = mallory.Send(raw)
	}
	sent(t, mallory)
	if ids := x.Srv.Calls.Active(); len(ids) != 1 || ids[0] != "call-h" {
		t.Fatalf("active calls after mallory's elements: %v", ids)
	}
	if r := x.recordOf(t, "alice@localhost", "call-h"); r.Callee != "bob@localhost/phone" || !r.End.IsZero() || r.Answer.IsZero() {
		t.Fatalf("record after mallory's elements: %+v", r)
	}
	// Supervision goes on: bob's link dies, alice is told.
	_ = x.bob.Abort()
	fromBob := func(s *wire.Stanza) bool { return terminate(s) && s.From == "bob@localhost/phone" }
	if st, err := x.alice.Expect(timeout, fromBob); err != nil || !client.Contains(st, "<connectivity-error/>") {
		t.Fatalf("no session-terminate after bob vanished: %v %v", st, err)
	}
	if reason, _ := x.record(t, "call-h"); reason != "connectivity-error" {
		t.Fatalf("record: %q", reason)
	}
}

// A third user's <proceed/> for a ringing call does not answer it; the
// callee's does, and the record names the callee's device.
func TestThirdPartyCannotAnswer(t *testing.T) {
	x := setup(t, nil)
	x.AddUser("mallory", "secret-pw")
	mallory := x.Login("mallory", "secret-pw", "pc")
	_ = x.alice.Send(jmi("bob@localhost", "propose", "call-p", audio))
	if _, err := x.bob.Expect(timeout, jmiFrom("propose")); err != nil {
		t.Fatal(err)
	}
	_ = mallory.Send(jmi("alice@localhost/phone", "proceed", "call-p", ""))
	_ = mallory.Send(jingleIQ("alice@localhost/phone", "session-accept", "call-p"))
	sent(t, mallory)
	if ids := x.Srv.Calls.Active(); len(ids) != 0 {
		t.Fatalf("mallory's proceed answered the call: active %v", ids)
	}
	if r := x.recordOf(t, "alice@localhost", "call-p"); r.Callee != "bob@localhost" || !r.Answer.IsZero() {
		t.Fatalf("record after mallory's proceed: %+v", r)
	}
	_ = x.bob.Send(jmi("alice@localhost/phone", "proceed", "call-p", ""))
	sent(t, x.bob)
	if r := x.recordOf(t, "alice@localhost", "call-p"); r.Callee != "bob@localhost/phone" || r.Answer.IsZero() {
		t.Fatalf("record after bob's proceed: %+v", r)
	}
	if ids := x.Srv.Calls.Active(); len(ids) != 1 {
		t.Fatalf("active %v", ids)
	}
}

// Two callers may use the same id: two calls, two records; ending one
// leaves the other.
func TestSameIDTwoCallers(t *testing.T) {
	x := setup(t, nil)
	x.AddUser("carol", "secret-pw")
	x.AddUser("dave", "secret-pw")
	carol := x.Login("carol", "secret-pw", "pc")
	dave := x.Login("dave", "secret-pw", "pc")
	for _, c := range []*client.Client{carol, dave} {
		_ = c.Send("<presence/>")
	}
	syncAll(t, carol, dave)
	x.connect(t, "same")
	_ = carol.Send(jmi("dave@localhost", "propose", "same", audio))
	if _, err := dave.Expect(timeout, jmiFrom("propose")); err != nil {
		t.Fatal(err)
	}
	_ = dave.Send(jmi("carol@localhost/pc", "proceed", "same", ""))
	if _, err := carol.Expect(timeout, jmiFrom("proceed")); err != nil {
		t.Fatal(err)
	}
	sent(t, dave)
	if ids := x.Srv.Calls.Active(); len(ids) != 2 {
		t.Fatalf("active calls %v, want both", ids)
	}
	if r := x.recordOf(t, "carol@localhost", "same"); r.Callee != "dave@localhost/pc" || r.Answer.IsZero() {
		t.Fatalf("carol's record %+v", r)
	}
	// Carol hangs up: alice and bob talk on.
	_ = carol.Send(jmi("dave@localhost/pc", "finish", "same", success))
	sent(t, carol)
	if ids := x.Srv.Calls.Active(); len(ids) != 1 {
		t.Fatalf("active calls after carol's finish: %v", ids)
	}
	if r := x.recordOf(t, "alice@localhost", "same"); r.Callee != "bob@localhost/phone" || !r.End.IsZero() {
		t.Fatalf("alice's record after carol's finish: %+v", r)
	}
	if r := x.recordOf(t, "carol@localhost", "same"); r.EndReason != storage.CallSuccess {
		t.Fatalf("carol's record %+v", r)
	}
}
