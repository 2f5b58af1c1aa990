package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST API and coturn's use-auth-secret specify
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Credentials returns short-lived TURN REST API credentials
// (draft-uberti-behave-turn-rest-00, coturn's use-auth-secret) for user
// (a bare JID), valid for ttl from now: username "EXPIRY:USER" with EXPIRY
// in unix seconds, password base64(HMAC-SHA1(secret, username)).
func Credentials(secret, user string, ttl time.Duration) (username, password string, expires time.Time) {
	expires = time.Now().Add(ttl).Truncate(time.Second)
	username, password = CredentialsUntil(secret, user, expires)
	return username, password, expires
}

// CredentialsUntil returns the credentials for user that expire at expires
// (rounded down to the second).
func CredentialsUntil(secret, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return username, Password(secret, username)
}

// Password is base64(HMAC-SHA1(secret, username)), standard encoding.
func Password(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Errors of ParseUsername and Check.
var (
	ErrMalformedUsername = errors.New("turn: username is not EXPIRY:USER")
	ErrExpired           = errors.New("turn: credentials expired")
	ErrBadPassword       = errors.New("turn: wrong password")
)

// ParseUsername splits a TURN REST username "EXPIRY:USER" into its expiry
// and user. USER must not be empty; EXPIRY is decimal unix seconds.
func ParseUsername(username string) (expires time.Time, user string, err error) {
	ts, user, ok := strings.Cut(username, ":")
	if !ok || user == "" || ts == "" || len(ts) > 12 {
		return time.Time{}, "", ErrMalformedUsername
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return time.Time{}, "", ErrMalformedUsername
		}
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", ErrMalformedUsername
	}
	return time.Unix(n, 0), user, nil
}

// Check verifies a username/password pair at now: the format, the expiry,
// and the password. It returns the user (the JID part).
func Check(secret, username, password string, now time.Time) (user string, err error) {
	exp, user, err := ParseUsername(username)
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(Password(secret, username)), []byte(password)) != 1 {
		return "", ErrBadPassword
	}
	if now.After(exp) {
		return user, ErrExpired
	}
	return user, nil
}
