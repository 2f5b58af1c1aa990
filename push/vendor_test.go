package push

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/conf"
)

// Test credentials and a stand-in for APNs, FCM and Google's OAuth token
// endpoint: one real HTTP/2 server over TLS on loopback that checks
// authentication the way the vendors do and records every request.

const (
	testKeyID   = "ABC123DEFG"
	testTeamID  = "TEAM123456"
	testBundle  = "org.example.chat"
	testProject = "xmppd-test"
	testEmail   = "push@xmppd-test.iam.gserviceaccount.com"
	testRSAKid  = "0123456789abcdef"
)

var (
	keysOnce sync.Once
	testEC   *ecdsa.PrivateKey
	testRSA  *rsa.PrivateKey
)

func testKeys(t testing.TB) (*ecdsa.PrivateKey, *rsa.PrivateKey) {
	keysOnce.Do(func() {
		var err error
		if testEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if testRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return testEC, testRSA
}

// vendorReq is one request the stand-in received.
type vendorReq struct {
	Method, Path string
	Proto        int
	Header       http.Header
	Body         []byte
	JSON         map[string]any
	AuthOK       bool // the stand-in accepted its authentication
}

// standIn is the fake vendor.
type standIn struct {
	t   testing.TB
	srv *httptest.Server
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey

	mu          sync.Mutex
	apns        []vendorReq
	fcm         []vendorReq
	tokens      []vendorReq       // OAuth token requests
	issued      map[string]bool   // valid access tokens
	apnsAnswer  map[string][2]any // device token → status, reason
	fcmAnswer   map[string][2]any // registration token → status, errorCode
	expireJWTs  int               // answer this many APNs requests 403 ExpiredProviderToken
	revokeFirst bool              // refuse the first access token once with 401
	notify      chan struct{}
	gate        chan struct{} // when set, APNs answers wait until it is closed

	idle func(context.Context) error // the server's push queues are empty
}

func newStandIn(t testing.TB) *standIn {
	ec, rk := testKeys(t)
	s := &standIn{t: t, ec: &ec.PublicKey, rsa: &rk.PublicKey, issued: map[string]bool{},
		apnsAnswer: map[string][2]any{}, fcmAnswer: map[string][2]any{}, notify: make(chan struct{}, 100)}
	mux := http.NewServeMux()
	mux.HandleFunc("/3/device/", s.serveAPNs)
	mux.HandleFunc("/sandbox/3/device/", s.serveAPNs)
	mux.HandleFunc("/token", s.serveToken)
	mux.HandleFunc("/v1/projects/", s.serveFCM)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) URL() string { return s.srv.URL }

// caFile writes the stand-in's certificate for the ca-file setting.
func (s *standIn) caFile(dir string) string {
	p := filepath.Join(dir, "standin-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func record(r *http.Request) vendorReq {
	b, _ := io.ReadAll(r.Body)
	v := vendorReq{Method: r.Method, Path: r.URL.Path, Proto: r.ProtoMajor, Header: r.Header.Clone(), Body: b}
	_ = json.Unmarshal(b, &v.JSON)
	return v
}

func (s *standIn) serveAPNs(w http.ResponseWriter, r *http.Request) {
	v := record(r)
	s.mu.Lock()
	v.AuthOK = true
	s.apns = append(s.apns, v)
	status, reason := http.StatusOK, ""
	jwt, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	switch {
	case r.ProtoMajor != 2:
		status, reason = http.StatusHTTPVersionNotSupported, "HTTP2Required"
	case !ok || s.checkES256(jwt) != nil:
		status, reason = http.StatusForbidden, "InvalidProviderToken"
		s.apns[len(s.apns)-1].AuthOK = false
	case s.expireJWTs > 0:
		s.expireJWTs--
		status, reason = http.StatusForbidden, "ExpiredProviderToken"
	default:
		_, token, _ := strings.Cut(r.URL.Path, "/3/device/")
		if a, ok := s.apnsAnswer[token]; ok {
			status, reason = a[0].(int), a[1].(string)
		}
	}
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.signal()
		<-gate
	}
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	w.WriteHeader(status)
	if reason != "" {
		fmt.Fprintf(w, `{"reason":%q}`, reason)
	}
	s.signal()
}

// checkES256 verifies an APNs provider token.
func (s *standIn) checkES256(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	var hdr, claims map[string]any
	if err := decodePart(parts[0], &hdr); err != nil {
		return err
	}
	if err := decodePart(parts[1], &claims); err != nil {
		return err
	}
	if hdr["alg"] != "ES256" || hdr["kid"] != testKeyID || claims["iss"] != testTeamID {
		return fmt.Errorf("header %v claims %v", hdr, claims)
	}
	if iat, ok := claims["iat"].(float64); !ok || time.Since(time.Unix(int64(iat), 0)) > time.Hour {
		return fmt.Errorf("iat %v", claims["iat"])
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return fmt.Errorf("signature is not r‖s")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(s.ec, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return fmt.Errorf("bad ES256 signature")
	}
	return nil
}

func decodePart(p string, v any) error {
	b, err := b64.DecodeString(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s *standIn) serveToken(w http.ResponseWriter, r *http.Request) {
	v := vendorReq{Method: r.Method, Path: r.URL.Path, Proto: r.ProtoMajor, Header: r.Header.Clone()}
	err := r.ParseForm()
	s.mu.Lock()
	s.tokens = append(s.tokens, v)
	n := len(s.tokens)
	s.mu.Unlock()
	if err == nil {
		err = s.checkAssertion(r)
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, err.Error())
		return
	}
	tok := fmt.Sprintf("ya29.access-%d", n)
	s.mu.Lock()
	s.issued[tok] = true
	s.mu.Unlock()
	w.Header().Set("content-type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":3599,"token_type":"Bearer"}`, tok)
}

// checkAssertion verifies the JWT-bearer grant as Google's token endpoint does.
func (s *standIn) checkAssertion(r *http.Request) error {
	if r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return fmt.Errorf("method %s grant_type %q", r.Method, r.PostForm.Get("grant_type"))
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion is not a JWT")
	}
	var hdr, claims map[string]any
	if err := decodePart(parts[0], &hdr); err != nil {
		return err
	}
	if err := decodePart(parts[1], &claims); err != nil {
		return err
	}
	if hdr["alg"] != "RS256" || hdr["kid"] != testRSAKid {
		return fmt.Errorf("header %v", hdr)
	}
	if claims["iss"] != testEmail || claims["scope"] != fcmScope || claims["aud"] != s.URL()+"/token" {
		return fmt.Errorf("claims %v", claims)
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if exp-iat != 3600 || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
		return fmt.Errorf("iat %v exp %v", iat, exp)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return rsa.VerifyPKCS1v15(s.rsa, crypto.SHA256, sum[:], sig)
}

func (s *standIn) serveFCM(w http.ResponseWriter, r *http.Request) {
	v := record(r)
	s.mu.Lock()
	v.AuthOK = true
	s.fcm = append(s.fcm, v)
	tok, _ := strings.CutPrefix(r.Header.Get("authorization"), "Bearer ")
	valid := s.issued[tok]
	if valid && s.revokeFirst {
		s.revokeFirst = false
		delete(s.issued, tok)
		valid = false
	}
	var answer [2]any
	if m, ok := v.JSON["message"].(map[string]any); ok {
		if t, ok := m["token"].(string); ok {
			answer = s.fcmAnswer[t]
		}
	}
	s.mu.Unlock()
	w.Header().Set("content-type", "application/json")
	switch {
	case r.URL.Path != "/v1/projects/"+testProject+"/messages:send" || r.Method != http.MethodPost:
		w.WriteHeader(http.StatusNotFound)
	case !valid:
		s.mu.Lock()
		s.fcm[len(s.fcm)-1].AuthOK = false
		s.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`)
	case answer[0] != nil:
		w.WriteHeader(answer[0].(int))
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"x","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":%q}]}}`,
			answer[0].(int), answer[1].(string))
	default:
		fmt.Fprintf(w, `{"name":"projects/%s/messages/0:1"}`, testProject)
	}
	s.signal()
}

// APNs returns the APNs requests so far.
func (s *standIn) APNs() []vendorReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]vendorReq(nil), s.apns...)
}

// FCM returns the FCM send requests so far.
func (s *standIn) FCM() []vendorReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]vendorReq(nil), s.fcm...)
}

// Tokens returns the OAuth token requests so far.
func (s *standIn) Tokens() []vendorReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]vendorReq(nil), s.tokens...)
}

// waitAPNs waits until n APNs requests arrived and returns them; no
// further one may have come.
func (s *standIn) waitAPNs(t testing.TB, n int) []vendorReq {
	t.Helper()
	return s.wait(t, n, s.APNs, "APNs")
}

func (s *standIn) waitFCM(t testing.TB, n int) []vendorReq {
	t.Helper()
	return s.wait(t, n, s.FCM, "FCM")
}

// wait waits until n requests arrived. When the stand-in serves a running
// server (idle set), it then waits until the server's push queues are
// empty: what was triggered before has been sent, so a request more is
// seen here, not missed.
func (s *standIn) wait(t testing.TB, n int, get func() []vendorReq, what string) []vendorReq {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(get()) < n && time.Now().Before(deadline) {
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
	if s.idle != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.idle(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the push queues did not drain: %v", err)
		}
	}
	got := get()
	if len(got) != n {
		for _, r := range got {
			t.Logf("%s request: %s %s %s", what, r.Method, r.Path, r.Body)
		}
		t.Fatalf("%s received %d requests, want %d", what, len(got), n)
	}
	return got
}

// Credential files.

func writeP8(t testing.TB, dir string) string {
	ec, _ := testKeys(t)
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "AuthKey_"+testKeyID+".p8")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeServiceAccount(t testing.TB, dir, tokenURI string) string {
	_, rk := testKeys(t)
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	sa := map[string]string{
		"type": "service_account", "project_id": testProject, "private_key_id": testRSAKid,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": testEmail, "client_id": "1", "token_uri": tokenURI,
		"auth_uri": "https://accounts.google.com/o/oauth2/auth",
	}
	b, _ := json.Marshal(sa)
	p := filepath.Join(dir, "service-account.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// appServerConfig is an app server configuration pointing at s.
func appServerConfig(t testing.TB, s *standIn) AppServerConfig {
	dir := t.TempDir()
	c := DefaultConfig().AppServer
	c.CAFile = pathOf(s.caFile(dir))
	c.APNs = APNsConfig{KeyFile: pathOf(writeP8(t, dir)), KeyID: testKeyID, TeamID: testTeamID, BundleID: testBundle,
		Endpoint: s.URL(), SandboxEndpoint: s.URL() + "/sandbox"}
	c.FCM = FCMConfig{ServiceAccount: pathOf(writeServiceAccount(t, dir, s.URL()+"/token")), Endpoint: s.URL(), MessagePriority: "normal"}
	return c
}

func pathOf(p string) conf.Path { return conf.Path(p) }

func (s *standIn) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}
