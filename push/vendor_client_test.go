package push

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func vendorClients(t *testing.T, s *standIn) (*apnsClient, *fcmClient) {
	t.Helper()
	c := appServerConfig(t, s)
	hc, err := httpClient(string(c.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAPNs(&c.APNs, hc, c.MessageTTL, c.CallTTL)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFCM(&c.FCM, hc, c.MessageTTL, c.CallTTL)
	if err != nil {
		t.Fatal(err)
	}
	return a, f
}

func header(t *testing.T, r vendorReq, name, want string) {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func expiration(t *testing.T, r vendorReq, ttl time.Duration) {
	t.Helper()
	exp, err := strconv.ParseInt(r.Header.Get("apns-expiration"), 10, 64)
	if d := time.Until(time.Unix(exp, 0)); err != nil || d > ttl+time.Second || d < ttl-5*time.Second {
		t.Errorf("apns-expiration %q: in %v, want about %v", r.Header.Get("apns-expiration"), d, ttl)
	}
}

func TestAPNsRequests(t *testing.T) {
	s := newStandIn(t)
	a, _ := vendorClients(t, s)
	ctx := context.Background()
	dev := target{typ: "apns", token: "a1b2c3", voipToken: "feed01"}

	// A message: an alert push to the bundle's topic.
	if err := a.send(ctx, dev, vendorNotice{node: "n1", count: 2, sender: "juliet@example.org", body: "hi"}); err != nil {
		t.Fatal(err)
	}
	// A call: a VoIP push with the PushKit token to BUNDLE.voip.
	if err := a.send(ctx, dev, vendorNotice{node: "n1", count: 2, sender: "juliet@example.org",
		call: &call{id: "c-42", from: "juliet@example.org/phone", media: []string{"audio", "video"}}}); err != nil {
		t.Fatal(err)
	}
	reqs := s.waitAPNs(t, 2)
	m := reqs[0]
	if m.Method != http.MethodPost || m.Path != "/3/device/a1b2c3" || m.Proto != 2 {
		t.Errorf("message request %s %s HTTP/%d", m.Method, m.Path, m.Proto)
	}
	header(t, m, "apns-push-type", "alert")
	header(t, m, "apns-topic", testBundle)
	header(t, m, "apns-priority", "10")
	header(t, m, "apns-collapse-id", "messages")
	header(t, m, "content-type", "application/json")
	expiration(t, m, 24*time.Hour)
	aps, _ := m.JSON["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if alert["title"] != "juliet@example.org" || alert["body"] != "hi" || aps["badge"] != 2.0 || aps["mutable-content"] != 1.0 {
		t.Errorf("message payload %s", m.Body)
	}
	if x, _ := m.JSON["xmpp"].(map[string]any); x["type"] != "message" || x["node"] != "n1" || x["count"] != 2.0 {
		t.Errorf("message payload %s", m.Body)
	}

	c := reqs[1]
	if c.Path != "/3/device/feed01" {
		t.Errorf("call went to %s, want the voip token", c.Path)
	}
	header(t, c, "apns-push-type", "voip")
	header(t, c, "apns-topic", testBundle+".voip")
	header(t, c, "apns-priority", "10")
	header(t, c, "apns-collapse-id", "call:c-42")
	expiration(t, c, 30*time.Second)
	x, _ := c.JSON["xmpp"].(map[string]any)
	if x["type"] != "call" || x["call-id"] != "c-42" || x["caller"] != "juliet@example.org/phone" || len(x["media"].([]any)) != 2 {
		t.Errorf("call payload %s", c.Body)
	}
	// The provider token is reused.
	if reqs[0].Header.Get("authorization") != reqs[1].Header.Get("authorization") {
		t.Error("a new provider token for every request")
	}
}

func TestAPNsSandboxAndNoVoIPToken(t *testing.T) {
	s := newStandIn(t)
	a, _ := vendorClients(t, s)
	err := a.send(context.Background(), target{typ: "apns", token: "abcd", sandbox: true}, vendorNotice{call: &call{id: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	r := s.waitAPNs(t, 1)[0]
	if r.Path != "/sandbox/3/device/abcd" {
		t.Errorf("path %s, want the sandbox endpoint with the device token", r.Path)
	}
	header(t, r, "apns-push-type", "voip")
}

func TestAPNsExpiredProviderTokenRenewed(t *testing.T) {
	s := newStandIn(t)
	a, _ := vendorClients(t, s)
	s.expireJWTs = 1
	if err := a.send(context.Background(), target{typ: "apns", token: "abcd"}, vendorNotice{count: 1}); err != nil {
		t.Fatal(err)
	}
	reqs := s.waitAPNs(t, 2)
	if reqs[0].Header.Get("authorization") == reqs[1].Header.Get("authorization") {
		t.Error("retried with the refused provider token")
	}
	// Refused twice: a wait error, the registration stays.
	s.mu.Lock()
	s.expireJWTs = 2
	s.mu.Unlock()
	err := a.send(context.Background(), target{typ: "apns", token: "abcd"}, vendorNotice{count: 1})
	var se *stanzaErr
	if !errors.As(err, &se) || se.typ != "wait" || disables(se.typ, se.cond) {
		t.Errorf("twice refused provider token: %v", err)
	}
}

func TestAPNsErrors(t *testing.T) {
	s := newStandIn(t)
	a, _ := vendorClients(t, s)
	for _, tc := range []struct {
		status  int
		reason  string
		disable bool
	}{
		{410, "Unregistered", true},
		{400, "BadDeviceToken", true},
		{400, "DeviceTokenNotForTopic", true},
		{400, "BadCollapseId", false},
		{429, "TooManyRequests", false},
		{500, "InternalServerError", false},
		{503, "ServiceUnavailable", false},
		{413, "PayloadTooLarge", false},
	} {
		s.mu.Lock()
		s.apnsAnswer["dead"] = [2]any{tc.status, tc.reason}
		s.mu.Unlock()
		err := a.send(context.Background(), target{typ: "apns", token: "dead"}, vendorNotice{count: 1})
		var se *stanzaErr
		if !errors.As(err, &se) {
			t.Errorf("%d %s: %v, want a stanza error", tc.status, tc.reason, err)
			continue
		}
		if got := disables(se.typ, se.cond); got != tc.disable {
			t.Errorf("%d %s: %s/%s disables=%v, want %v", tc.status, tc.reason, se.typ, se.cond, got, tc.disable)
		}
	}
}

func TestFCMRequests(t *testing.T) {
	s := newStandIn(t)
	_, f := vendorClients(t, s)
	ctx := context.Background()
	dev := target{typ: "fcm", token: "fcm-token:1"}
	if err := f.send(ctx, dev, vendorNotice{node: "n", count: 3, sender: "romeo@example.org", body: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := f.send(ctx, dev, vendorNotice{node: "n", count: 3, sender: "romeo@example.org", call: &call{id: "c1", from: "romeo@example.org/x", media: []string{"audio"}}}); err != nil {
		t.Fatal(err)
	}
	reqs := s.waitFCM(t, 2)
	if toks := s.Tokens(); len(toks) != 1 {
		t.Errorf("%d token requests, want 1 (the access token is cached)", len(toks))
	} else if toks[0].Method != http.MethodPost || toks[0].Header.Get("content-type") != "application/x-www-form-urlencoded" {
		t.Errorf("token request %s %q", toks[0].Method, toks[0].Header.Get("content-type"))
	}
	for i, r := range reqs {
		if r.Method != http.MethodPost || r.Path != "/v1/projects/"+testProject+"/messages:send" || r.Proto != 2 {
			t.Errorf("request %d: %s %s HTTP/%d", i, r.Method, r.Path, r.Proto)
		}
		header(t, r, "authorization", "Bearer ya29.access-1")
	}
	msg := func(r vendorReq) (map[string]any, map[string]any) {
		m, _ := r.JSON["message"].(map[string]any)
		if m["token"] != "fcm-token:1" {
			t.Errorf("token %v", m["token"])
		}
		d, _ := m["data"].(map[string]any)
		a, _ := m["android"].(map[string]any)
		return d, a
	}
	d, a := msg(reqs[0])
	if d["type"] != "message" || d["count"] != "3" || d["sender"] != "romeo@example.org" || d["body"] != "b" || d["node"] != "n" {
		t.Errorf("message data %s", reqs[0].Body)
	}
	if a["priority"] != "normal" || a["ttl"] != "86400s" || a["collapse_key"] != "messages" {
		t.Errorf("message android %s", reqs[0].Body)
	}
	d, a = msg(reqs[1])
	if d["type"] != "call" || d["call-id"] != "c1" || d["caller"] != "romeo@example.org/x" || d["media"] != "audio" {
		t.Errorf("call data %s", reqs[1].Body)
	}
	if a["priority"] != "high" || a["ttl"] != "30s" || a["collapse_key"] != nil {
		t.Errorf("call android %s", reqs[1].Body)
	}
}

func TestFCMRefusedAccessTokenRenewed(t *testing.T) {
	s := newStandIn(t)
	_, f := vendorClients(t, s)
	s.revokeFirst = true
	if err := f.send(context.Background(), target{typ: "fcm", token: "t"}, vendorNotice{count: 1}); err != nil {
		t.Fatal(err)
	}
	reqs := s.waitFCM(t, 2)
	if len(s.Tokens()) != 2 || reqs[1].Header.Get("authorization") != "Bearer ya29.access-2" {
		t.Errorf("after a 401: %d token requests, retry with %q", len(s.Tokens()), reqs[1].Header.Get("authorization"))
	}
}

func TestFCMErrors(t *testing.T) {
	s := newStandIn(t)
	_, f := vendorClients(t, s)
	for _, tc := range []struct {
		status  int
		code    string
		disable bool
	}{
		{404, "UNREGISTERED", true},
		{400, "INVALID_ARGUMENT", true},
		{403, "SENDER_ID_MISMATCH", true},
		{429, "QUOTA_EXCEEDED", false},
		{503, "UNAVAILABLE", false},
		{500, "INTERNAL", false},
		{401, "THIRD_PARTY_AUTH_ERROR", false},
	} {
		s.mu.Lock()
		s.fcmAnswer["dead"] = [2]any{tc.status, tc.code}
		s.mu.Unlock()
		err := f.send(context.Background(), target{typ: "fcm", token: "dead"}, vendorNotice{count: 1})
		var se *stanzaErr
		if !errors.As(err, &se) {
			t.Errorf("%d %s: %v, want a stanza error", tc.status, tc.code, err)
			continue
		}
		if got := disables(se.typ, se.cond); got != tc.disable {
			t.Errorf("%d %s: %s/%s disables=%v, want %v", tc.status, tc.code, se.typ, se.cond, got, tc.disable)
		}
	}
	if n := len(s.Tokens()); n != 1 {
		t.Errorf("%d token requests; THIRD_PARTY_AUTH_ERROR must not renew the access token", n)
	}
}
