package upload

import (
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"

	"github.com/xmppd/xmppd/conf"
)

// Config is the <modules><upload …/></modules> section.
type Config struct {
	conf.ModuleBase
	// Dir holds the uploaded files and the slot index (relative paths are
	// in the data directory).
	Dir conf.Path `conf:"dir"`
	// MaxFileSize is the largest file a slot may be requested for
	// (advertised in disco#info as max-file-size).
	MaxFileSize conf.ByteSize `conf:"max-file-size,min=1"`
	// Quota is the most one user may keep stored at once (files not yet
	// expired plus slots not yet used); 0 = unlimited.
	Quota conf.ByteSize `conf:"quota,min=0"`
	// ExpireAfter is how long a file is kept after its upload; 0 = forever.
	ExpireAfter time.Duration `conf:"expire-after"`
	// PutExpiry is how long the PUT URL of a slot stays valid.
	PutExpiry time.Duration `conf:"put-expiry,min=1s,max=24h"`
	// RequestsPerMinute is the number of slot requests one user may make per
	// minute (a token bucket: bursts up to this number); 0 = unlimited.
	RequestsPerMinute int `conf:"requests-per-minute,min=0"`
	// BaseURL is the external URL of the HTTP listener's root as clients see
	// it (behind a reverse proxy: "https://upload.example.org"). Slot URLs
	// are BaseURL + "/upload/ID/FILENAME". "" = http(s)://HOST:PORT of the
	// first HTTP listener.
	BaseURL string `conf:"base-url"`
	// Allow and Deny are content-type patterns ("image/png", "image/*",
	// "*/*"). An empty Allow list allows every type; Deny wins over Allow.
	Allow []string `conf:"allow>type@name"`
	Deny  []string `conf:"deny>type@name"`
}

// DefaultConfig returns the defaults of the upload section.
func DefaultConfig() *Config {
	return &Config{
		Dir:               "uploads",
		MaxFileSize:       100 * conf.MiB,
		Quota:             1 * conf.GiB,
		ExpireAfter:       30 * 24 * time.Hour,
		PutExpiry:         5 * time.Minute,
		RequestsPerMinute: 30,
	}
}

func init() {
	conf.RegisterModule("upload", func() any { return DefaultConfig() })
}

// Validate implements the conf module check.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return conf.AttrError("dir", "the upload directory must not be empty")
	}
	if c.BaseURL != "" {
		if _, err := parseBaseURL(c.BaseURL); err != nil {
			return conf.AttrError("base-url", "%v", err)
		}
	}
	for _, list := range [][]string{c.Allow, c.Deny} {
		for _, p := range list {
			if !validPattern(p) {
				return fmt.Errorf("%q is not a content-type pattern (\"image/png\", \"image/*\" or \"*/*\")", p)
			}
		}
	}
	return nil
}

// parseBaseURL checks an external base URL: absolute http or https, no
// query or fragment; a trailing slash is dropped.
func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q must be an absolute http:// or https:// URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q must not have a query, a fragment or user information", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// validPattern accepts "type/subtype", "type/*" and "*/*" (or "*").
func validPattern(p string) bool {
	if p == "*" || p == "*/*" {
		return true
	}
	t, sub, ok := strings.Cut(p, "/")
	if !ok || t == "" || sub == "" || strings.Contains(t, "*") {
		return false
	}
	if sub == "*" {
		sub = "x"
	} else if strings.Contains(sub, "*") {
		return false // no partial wildcards
	}
	mt, params, err := mime.ParseMediaType(t + "/" + sub)
	return err == nil && len(params) == 0 && strings.Count(mt, "/") == 1
}

// matchType reports whether the media type mt (lowercase, no parameters)
// matches pattern p.
func matchType(p, mt string) bool {
	p = strings.ToLower(p)
	if p == "*" || p == "*/*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(p, "/*"); ok {
		t, _, _ := strings.Cut(mt, "/")
		return t == prefix
	}
	return p == mt
}

// typeAllowed applies the allow and deny lists to a media type.
func (c *Config) typeAllowed(mt string) bool {
	for _, p := range c.Deny {
		if matchType(p, mt) {
			return false
		}
	}
	if len(c.Allow) == 0 {
		return true
	}
	for _, p := range c.Allow {
		if matchType(p, mt) {
			return true
		}
	}
	return false
}
