package push

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/xmppd/xmppd/conf"
)

// Config is the <push> section of the configuration file.
type Config struct {
	conf.ModuleBase
	// Throttle: after a notification to a device, further messages within
	// this time are summed up in one notification sent when it ends
	// (calls are never held back); 0 sends one notification per message.
	Throttle time.Duration `conf:"throttle"`
	// IncludeBody puts the message text in the summary (last-message-body)
	// for the app server, which then sees it.
	IncludeBody bool `conf:"include-body"`
	// MaxDevices is how many registrations an account may hold; 0 = no limit.
	MaxDevices int `conf:"max-devices,min=0"`
	// Timeout is how long the server waits for an app server's answer.
	Timeout time.Duration `conf:"timeout,min=1s"`
	// MaxQueue bounds the notifications waiting, per account and per
	// device, while earlier ones are published (one at a time, in order).
	// Past it a notification is refused, counted and logged.
	MaxQueue int `conf:"max-queue,min=1,max=1000000"`
	// AppServer is the built-in app server push.DOMAIN.
	AppServer AppServerConfig `conf:"app-server"`
}

// AppServerConfig configures the built-in app server. It runs when APNs or
// FCM credentials are set.
type AppServerConfig struct {
	// CAFile holds extra PEM root certificates trusted for the vendor
	// endpoints (a TLS-intercepting proxy; tests).
	CAFile conf.Path `conf:"ca-file"`
	// MessageTTL is how long a vendor keeps trying to deliver a message
	// notification to a device that is off; CallTTL the same for a call.
	MessageTTL time.Duration `conf:"message-ttl"`
	CallTTL    time.Duration `conf:"call-ttl"`
	// Concurrency bounds the vendor requests in flight.
	Concurrency int        `conf:"concurrency,min=1,max=10000"`
	APNs        APNsConfig `conf:"apns"`
	FCM         FCMConfig  `conf:"fcm"`
}

// APNsConfig is Apple Push Notification service token (JWT) authentication.
type APNsConfig struct {
	KeyFile         conf.Path `conf:"key-file"`  // the .p8 signing key (PKCS#8 EC P-256)
	KeyID           string    `conf:"key-id"`    // its 10-character key id
	TeamID          string    `conf:"team-id"`   // the developer team id
	BundleID        string    `conf:"bundle-id"` // the app's bundle id: the topic (BUNDLE.voip for calls)
	Endpoint        string    `conf:"endpoint"`
	SandboxEndpoint string    `conf:"sandbox-endpoint"`
}

// FCMConfig is Firebase Cloud Messaging HTTP v1 with a service account.
type FCMConfig struct {
	ServiceAccount  conf.Path `conf:"service-account"` // the service-account JSON key file
	ProjectID       string    `conf:"project-id"`      // "" = the project_id of the JSON file
	Endpoint        string    `conf:"endpoint"`
	TokenURI        string    `conf:"token-uri"`        // "" = the token_uri of the JSON file
	MessagePriority string    `conf:"message-priority"` // android priority of message notifications: high or normal
}

// Defaults are the vendor endpoints.
const (
	APNsEndpoint        = "https://api.push.apple.com"
	APNsSandboxEndpoint = "https://api.sandbox.push.apple.com"
	FCMEndpoint         = "https://fcm.googleapis.com"
)

// DefaultConfig returns the defaults of the <push> section.
func DefaultConfig() *Config {
	return &Config{
		Throttle:   5 * time.Second,
		MaxDevices: 10,
		Timeout:    30 * time.Second,
		MaxQueue:   1000,
		AppServer: AppServerConfig{
			MessageTTL:  24 * time.Hour,
			CallTTL:     30 * time.Second,
			Concurrency: 64,
			APNs:        APNsConfig{Endpoint: APNsEndpoint, SandboxEndpoint: APNsSandboxEndpoint},
			FCM:         FCMConfig{Endpoint: FCMEndpoint, MessagePriority: "high"},
		},
	}
}

func init() {
	conf.RegisterModule("push", func() any { return DefaultConfig() })
}

// APNsOn reports whether APNs credentials are configured.
func (c *AppServerConfig) APNsOn() bool { return c.APNs.KeyFile != "" }

// FCMOn reports whether FCM credentials are configured.
func (c *AppServerConfig) FCMOn() bool { return c.FCM.ServiceAccount != "" }

// On reports whether the built-in app server runs.
func (c *AppServerConfig) On() bool { return c.APNsOn() || c.FCMOn() }

// Validate implements the conf module validation.
func (c *Config) Validate() error {
	var errs []error
	a := &c.AppServer
	if a.APNs.KeyFile != "" || a.APNs.KeyID != "" || a.APNs.TeamID != "" || a.APNs.BundleID != "" {
		for _, f := range []struct{ name, v string }{
			{"key-file", string(a.APNs.KeyFile)}, {"key-id", a.APNs.KeyID}, {"team-id", a.APNs.TeamID}, {"bundle-id", a.APNs.BundleID},
		} {
			if f.v == "" {
				errs = append(errs, fmt.Errorf("app-server/apns: %s is required when APNs is configured", f.name))
			}
		}
	}
	for _, e := range []struct{ name, v string }{
		{"apns@endpoint", a.APNs.Endpoint}, {"apns@sandbox-endpoint", a.APNs.SandboxEndpoint}, {"fcm@endpoint", a.FCM.Endpoint},
	} {
		if err := checkURL(e.v); err != nil {
			errs = append(errs, fmt.Errorf("app-server/%s: %w", e.name, err))
		}
	}
	if a.FCM.TokenURI != "" {
		if err := checkURL(a.FCM.TokenURI); err != nil {
			errs = append(errs, fmt.Errorf("app-server/fcm@token-uri: %w", err))
		}
	}
	if p := a.FCM.MessagePriority; p != "high" && p != "normal" {
		errs = append(errs, fmt.Errorf("app-server/fcm@message-priority: %q is not high or normal", p))
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an https URL without query", s)
	}
	return nil
}
