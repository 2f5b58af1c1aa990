package push

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fcmScope is the OAuth 2.0 scope for sending with FCM HTTP v1.
const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// serviceAccount is the part of a Google service-account key file used here.
type serviceAccount struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// fcmClient sends notifications with FCM HTTP v1, authenticated by an
// OAuth 2.0 access token obtained with the JWT-bearer grant (RFC 7523)
// from a service account, and cached until it expires.
type fcmClient struct {
	project, email, keyID, tokenURI, endpoint, priority string
	key                                                 *rsa.PrivateKey
	hc                                                  *http.Client
	messageTTL, callTTL                                 time.Duration

	mu      sync.Mutex
	access  string
	expires time.Time
}

func newFCM(cfg *FCMConfig, hc *http.Client, messageTTL, callTTL time.Duration) (*fcmClient, error) {
	b, err := os.ReadFile(string(cfg.ServiceAccount))
	if err != nil {
		return nil, err
	}
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.ServiceAccount, err)
	}
	if sa.Type != "service_account" || sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, fmt.Errorf("%s is not a service-account key file (type, client_email, private_key)", cfg.ServiceAccount)
	}
	key, err := parseRSAKey([]byte(sa.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.ServiceAccount, err)
	}
	f := &fcmClient{
		project: cfg.ProjectID, email: sa.ClientEmail, keyID: sa.PrivateKeyID, tokenURI: cfg.TokenURI,
		endpoint: cfg.Endpoint, priority: strings.ToLower(cfg.MessagePriority), key: key, hc: hc,
		messageTTL: messageTTL, callTTL: callTTL,
	}
	if f.project == "" {
		f.project = sa.ProjectID
	}
	if f.tokenURI == "" {
		f.tokenURI = sa.TokenURI
	}
	if f.project == "" || f.tokenURI == "" {
		return nil, fmt.Errorf("%s: no project_id or token_uri (set project-id / token-uri)", cfg.ServiceAccount)
	}
	if err := checkURL(f.tokenURI); err != nil {
		return nil, fmt.Errorf("token URI: %w", err)
	}
	return f, nil
}

// accessToken returns a cached access token, or gets a new one when it is
// about to expire or was refused (renew). Callers wait for one exchange.
func (f *fcmClient) accessToken(ctx context.Context, renew bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.access != "" && !renew && time.Until(f.expires) > time.Minute {
		return f.access, nil
	}
	now := time.Now()
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	if f.keyID != "" {
		header["kid"] = f.keyID
	}
	assertion, err := signRS256(f.key, header, map[string]any{
		"iss": f.email, "scope": fcmScope, "aud": f.tokenURI,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.tokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("content-type", "application/x-www-form-urlencoded")
	resp, err := f.hc.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &tok)
	if resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("OAuth token exchange: HTTP %d %s %s", resp.StatusCode, tok.Error, tok.Description)
	}
	if tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "bearer") {
		return "", fmt.Errorf("OAuth token exchange: token type %q, want Bearer", tok.TokenType)
	}
	if tok.ExpiresIn <= 0 {
		tok.ExpiresIn = 3600
	}
	f.access, f.expires = tok.AccessToken, now.Add(time.Duration(tok.ExpiresIn)*time.Second)
	return f.access, nil
}

// message builds the FCM v1 request body: a data message (the app shows
// what it wants), high priority for calls.
func (f *fcmClient) message(t target, n vendorNotice) ([]byte, error) {
	data := map[string]string{"node": n.node, "count": strconv.Itoa(n.count)}
	if n.sender != "" {
		data["sender"] = n.sender
	}
	android := map[string]any{}
	if c := n.call; c != nil {
		data["type"] = "call"
		data["call-id"] = c.id
		data["caller"] = c.from
		data["media"] = strings.Join(c.media, " ")
		android["priority"] = "high"
		android["ttl"] = strconv.FormatInt(int64(f.callTTL/time.Second), 10) + "s"
	} else {
		data["type"] = "message"
		if n.body != "" {
			data["body"] = n.body
		}
		android["priority"] = f.priority
		android["ttl"] = strconv.FormatInt(int64(f.messageTTL/time.Second), 10) + "s"
		android["collapse_key"] = "messages"
	}
	return json.Marshal(map[string]any{"message": map[string]any{"token": t.token, "data": data, "android": android}})
}

func (f *fcmClient) send(ctx context.Context, t target, n vendorNotice) error {
	body, err := f.message(t, n)
	if err != nil {
		return err
	}
	u := f.endpoint + "/v1/projects/" + url.PathEscape(f.project) + "/messages:send"
	for attempt := 0; ; attempt++ {
		access, err := f.accessToken(ctx, attempt > 0)
		if err != nil {
			return &stanzaErr{"wait", "internal-server-error", "FCM: " + err.Error()}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("authorization", "Bearer "+access)
		req.Header.Set("content-type", "application/json; charset=utf-8")
		resp, err := f.hc.Do(req)
		if err != nil {
			return &stanzaErr{"wait", "remote-server-timeout", "FCM: " + err.Error()}
		}
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		code := fcmErrorCode(rb)
		if resp.StatusCode == http.StatusUnauthorized && code != "THIRD_PARTY_AUTH_ERROR" && attempt == 0 {
			continue // the access token was refused: a new one, once
		}
		return fcmError(resp.StatusCode, code)
	}
}

// fcmErrorCode reads the FcmError code (or the Google API status) of an
// error answer.
func fcmErrorCode(body []byte) string {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	for _, d := range e.Error.Details {
		if strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	return e.Error.Status
}

// fcmError maps an FCM refusal like apnsError does.
func fcmError(status int, code string) *stanzaErr {
	text := "FCM: " + strconv.Itoa(status) + " " + code
	switch {
	case code == "UNREGISTERED" || status == http.StatusNotFound:
		return &stanzaErr{"cancel", "item-not-found", text}
	case code == "SENDER_ID_MISMATCH":
		return &stanzaErr{"auth", "not-authorized", text}
	case code == "INVALID_ARGUMENT":
		// Our payload is fixed and small: the token is what is wrong.
		return &stanzaErr{"modify", "bad-request", text}
	case code == "QUOTA_EXCEEDED" || status == http.StatusTooManyRequests:
		return &stanzaErr{"wait", "resource-constraint", text}
	default: // THIRD_PARTY_AUTH_ERROR, UNAVAILABLE, INTERNAL, our credentials
		return &stanzaErr{"wait", "internal-server-error", text}
	}
}
