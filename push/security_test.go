package push_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/xmppd/xmppd/push"
)

// A user who publishes straight to push.DOMAIN — a VoIP call push with
// its own text to any device token, or a notification for another user's
// registered node and device — is refused, and the vendors get nothing:
// the first request they see is the legitimate notification sent after.
func TestClientPublishToAppServerRefused(t *testing.T) {
	w := start(t, nil, 0)
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "push.localhost", "bob-node", "type", "apns", "token", "b0b0", "voip-token", "b1b1")))
	_ = bob.Close()
	w.gone(bobJID)

	options := func(fields string) string {
		return "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
			fields + "</x></publish-options>"
	}
	publish := func(id, node, notification, opts string) string {
		return "<iq type='set' id='" + id + "' to='push.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='" + node + "'><item>" +
			"<notification xmlns='urn:xmpp:push:0'>" + notification + "</notification></item></publish>" + opts + "</pubsub></iq>"
	}
	summary := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>" +
		"<field var='message-count'><value>1</value></field><field var='last-message-sender'><value>bank@example.com</value></field>" +
		"<field var='last-message-body'><value>Your account is locked, log in at evil.example</value></field></x>"
	voip := "<call xmlns='urn:xmppd:push:call:0' id='fake' from='boss@localhost/phone' media='audio'/>"
	mallory := w.e.Login("alice", pw, "pc")
	for i, raw := range []string{
		// A call push to a device token of the sender's choosing.
		publish("s1", "any", summary+voip, options("<field var='type'><value>apns</value></field><field var='token'><value>dead00</value></field><field var='voip-token'><value>dead01</value></field>")),
		// Bob's node and device, known to the sender.
		publish("s2", "bob-node", summary, options("<field var='type'><value>apns</value></field><field var='token'><value>b0b0</value></field>")),
		// FCM.
		publish("s3", "any", summary, options("<field var='type'><value>fcm</value></field><field var='token'><value>victim</value></field>")),
		// Bob's node without options: the app server must not fill them in.
		publish("s4", "bob-node", summary+voip, ""),
	} {
		wantError(t, iq(t, mallory, fmt.Sprintf("s%d", i+1), raw), "forbidden")
	}
	if n := push.Lookup(w.e.Srv.Router).AppServer().Refused(); n != 4 {
		t.Errorf("refused %d publishes, want 4", n)
	}

	_ = mallory.Send(chat(bobJID, "m1", "hello"))
	reqs := w.s.WaitAPNs(t, 1)
	if r := reqs[0]; r.Path != "/3/device/b0b0" || xmppData(t, r)["type"] != "message" || xmppData(t, r)["sender"] != "alice@localhost" {
		t.Fatalf("first APNs request %s %s", r.Path, r.Body)
	}
	w.s.WaitFCM(t, 0)
}

// Many notifications for one device at once (more than the 256 the server
// once kept in flight) reach the vendor one at a time, in the order they
// came: each message's count and body, each call between them.
func TestNotificationsInOrder(t *testing.T) {
	w := start(t, func(c *push.Config) { c.IncludeBody = true }, 0)
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "push.localhost", "n", "type", "apns", "token", "ab", "voip-token", "cd")))
	_ = bob.Close()
	w.gone(bobJID)
	alice := w.e.Login("alice", pw, "pc")
	const pairs = 150
	for i := range pairs {
		_ = alice.Send(chat(bobJID, fmt.Sprintf("m%d", i), fmt.Sprintf("body %d", i)))
		_ = alice.Send(propose(bobJID, fmt.Sprintf("call-%d", i)))
	}
	sync2(t, alice)
	reqs := w.s.WaitAPNs(t, 2*pairs)
	for i := range pairs {
		msg, call := xmppData(t, reqs[2*i]), xmppData(t, reqs[2*i+1])
		if msg["type"] != "message" || msg["count"] != float64(i+1) || msg["body"] != fmt.Sprintf("body %d", i) {
			t.Fatalf("request %d: %s, want message %d", 2*i, reqs[2*i].Body, i)
		}
		if call["type"] != "call" || call["call-id"] != fmt.Sprintf("call-%d", i) || call["count"] != float64(i+1) {
			t.Fatalf("request %d: %s, want call-%d", 2*i+1, reqs[2*i+1].Body, i)
		}
	}
	if n := push.Lookup(w.e.Srv.Router).Overflowed(); n != 0 {
		t.Errorf("%d notifications refused", n)
	}
}

// While the vendor holds a device's notification, max-queue more wait;
// past that they are refused and counted. The waiting ones go out in order
// once the vendor answers.
func TestQueueBoundCounted(t *testing.T) {
	w := start(t, func(c *push.Config) { c.MaxQueue = 3 }, 0)
	bob := w.e.Login("bob", pw, "phone")
	wantResult(t, iq(t, bob, "e1", enableXML("e1", "push.localhost", "n", "type", "apns", "token", "ab", "voip-token", "cd")))
	_ = bob.Close()
	w.gone(bobJID)
	m := push.Lookup(w.e.Srv.Router)

	release := w.s.HoldAPNs()
	alice := w.e.Login("alice", pw, "pc")
	_ = alice.Send(propose(bobJID, "c0"))
	w.s.Arrived(t, 1) // c0 is with the vendor, which does not answer yet
	for i := 1; i <= 6; i++ {
		_ = alice.Send(propose(bobJID, fmt.Sprintf("c%d", i)))
	}
	sync2(t, alice)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := m.AccountsIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := m.Overflowed(); n != 3 {
		t.Fatalf("refused %d notifications, want 3", n)
	}
	release()
	reqs := w.s.WaitAPNs(t, 4)
	for i, r := range reqs {
		if id := xmppData(t, r)["call-id"]; id != fmt.Sprintf("c%d", i) {
			t.Errorf("request %d is for %v", i, id)
		}
	}
}
