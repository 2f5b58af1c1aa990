package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// vendorNotice is what the app server forwards of a notification.
type vendorNotice struct {
	node   string
	count  int
	sender string
	body   string
	call   *call
}

// apnsTokenAge is how long a provider token is used: Apple refuses tokens
// older than an hour and new ones more often than every 20 minutes.
const apnsTokenAge = 40 * time.Minute

// maxCollapseID is APNs' limit on apns-collapse-id.
const maxCollapseID = 64

// apnsClient sends notifications through APNs over HTTP/2 with token
// (JWT) authentication.
type apnsClient struct {
	cfg                 APNsConfig
	key                 *ecdsa.PrivateKey
	hc                  *http.Client
	messageTTL, callTTL time.Duration

	mu     sync.Mutex
	jwt    string
	issued time.Time
}

func newAPNs(cfg *APNsConfig, hc *http.Client, messageTTL, callTTL time.Duration) (*apnsClient, error) {
	b, err := os.ReadFile(string(cfg.KeyFile))
	if err != nil {
		return nil, err
	}
	key, err := parseP256Key(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.KeyFile, err)
	}
	return &apnsClient{cfg: *cfg, key: key, hc: hc, messageTTL: messageTTL, callTTL: callTTL}, nil
}

// token returns the provider token, made anew when it is old or when
// APNs refused it (renew).
func (a *apnsClient) token(renew bool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jwt != "" && !renew && time.Since(a.issued) < apnsTokenAge {
		return a.jwt, nil
	}
	now := time.Now()
	jwt, err := signES256(a.key,
		map[string]string{"alg": "ES256", "kid": a.cfg.KeyID},
		map[string]any{"iss": a.cfg.TeamID, "iat": now.Unix()})
	if err != nil {
		return "", err
	}
	a.jwt, a.issued = jwt, now
	return jwt, nil
}

// apnsRequest is one notification in APNs' terms.
type apnsRequest struct {
	token, topic, pushType, collapseID string
	expiration                         time.Time
	payload                            []byte
}

// request builds the APNs request for n: an alert for messages, a VoIP
// push (PushKit) for a call.
func (a *apnsClient) request(t target, n vendorNotice) (apnsRequest, error) {
	x := map[string]any{"node": n.node, "count": n.count}
	if n.sender != "" {
		x["sender"] = n.sender
	}
	var r apnsRequest
	if c := n.call; c != nil {
		x["type"] = "call"
		x["call-id"] = c.id
		x["caller"] = c.from
		x["media"] = append([]string{}, c.media...)
		r.token, r.topic, r.pushType = t.token, a.cfg.BundleID+".voip", "voip"
		if t.voipToken != "" {
			r.token = t.voipToken
		}
		r.expiration = time.Now().Add(a.callTTL)
		r.collapseID = collapse("call:" + c.id)
		p, err := json.Marshal(map[string]any{"aps": map[string]any{}, "xmpp": x})
		r.payload = p
		return r, err
	}
	x["type"] = "message"
	alert := map[string]string{"body": "New message"}
	if n.body != "" {
		alert["body"] = n.body
		x["body"] = n.body
	}
	if n.sender != "" {
		alert["title"] = n.sender
	}
	aps := map[string]any{"alert": alert, "sound": "default", "mutable-content": 1}
	if n.count > 0 {
		aps["badge"] = n.count
	}
	r.token, r.topic, r.pushType = t.token, a.cfg.BundleID, "alert"
	r.expiration = time.Now().Add(a.messageTTL)
	r.collapseID = "messages"
	p, err := json.Marshal(map[string]any{"aps": aps, "xmpp": x})
	r.payload = p
	return r, err
}

func collapse(s string) string {
	if len(s) > maxCollapseID {
		return s[:maxCollapseID]
	}
	return s
}

// send delivers n to the device and maps APNs' answer (a *stanzaErr for
// a refusal).
func (a *apnsClient) send(ctx context.Context, t target, n vendorNotice) error {
	r, err := a.request(t, n)
	if err != nil {
		return err
	}
	endpoint := a.cfg.Endpoint
	if t.sandbox {
		endpoint = a.cfg.SandboxEndpoint
	}
	for attempt := 0; ; attempt++ {
		jwt, err := a.token(attempt > 0)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/3/device/"+r.token, bytes.NewReader(r.payload))
		if err != nil {
			return err
		}
		h := req.Header
		h.Set("authorization", "bearer "+jwt)
		h.Set("apns-push-type", r.pushType)
		h.Set("apns-topic", r.topic)
		h.Set("apns-priority", "10")
		h.Set("apns-expiration", strconv.FormatInt(r.expiration.Unix(), 10))
		h.Set("apns-collapse-id", r.collapseID)
		h.Set("content-type", "application/json")
		resp, err := a.hc.Do(req)
		if err != nil {
			return &stanzaErr{"wait", "remote-server-timeout", "APNs: " + err.Error()}
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		var e struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == http.StatusForbidden && attempt == 0 &&
			(e.Reason == "ExpiredProviderToken" || e.Reason == "InvalidProviderToken") {
			continue // a new provider token, once
		}
		return apnsError(resp.StatusCode, e.Reason)
	}
}

// apnsError maps an APNs refusal: a device that is gone or a token that
// is not this app's is item-not-found (the registration ends); trouble on
// our side or Apple's is a wait error (the registration stays).
func apnsError(status int, reason string) *stanzaErr {
	text := "APNs: " + strconv.Itoa(status) + " " + reason
	switch {
	case status == http.StatusGone,
		status == http.StatusBadRequest && (reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic"):
		return &stanzaErr{"cancel", "item-not-found", text}
	case status == http.StatusTooManyRequests:
		return &stanzaErr{"wait", "resource-constraint", text}
	case status == http.StatusRequestEntityTooLarge:
		return &stanzaErr{"modify", "undefined-condition", text}
	default: // 403 provider token, 5xx, other 400s: configuration or Apple
		return &stanzaErr{"wait", "internal-server-error", text}
	}
}
