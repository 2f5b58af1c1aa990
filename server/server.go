// Package server assembles xmppd: it opens storage, loads certificates,
// builds the router, registers every module in one list (modules.go) and
// runs the c2s and HTTP listeners until Shutdown.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/certs"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/jingle/calls"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// Server is one running xmppd.
type Server struct {
	Config *conf.Config
	Log    *slog.Logger
	Store  storage.Store
	Router *router.Router
	C2S    *c2s.Server
	Certs  *certs.Store
	Calls  *calls.Module // nil when the calls module is off

	httpRoutes []httpRoute // added by modules (HandleHTTP) before Start
	closers    []func()    // modules' background work, stopped at Shutdown

	mu        sync.Mutex
	c2sAddrs  []net.Addr
	httpAddrs []net.Addr
	https     []*http.Server
	errs      chan error
}

type httpRoute struct {
	pattern string
	h       http.Handler
}

// onShutdown registers a module's stop function (sweepers, tickers,
// listeners of its own), run by Shutdown after the streams are closed.
func (s *Server) onShutdown(f func()) { s.closers = append(s.closers, f) }

// HandleHTTP mounts a module's handler (file upload, BOSH, metrics …) on
// every HTTP listener. Call it while registering modules, before Start.
func (s *Server) HandleHTTP(pattern string, h http.Handler) {
	s.httpRoutes = append(s.httpRoutes, httpRoute{pattern, h})
}

// OpenStore opens the configured storage backend (also used by the CLI).
func OpenStore(cfg *conf.Config) (storage.Store, error) {
	switch cfg.Storage.Driver {
	case conf.DriverSQLite, "":
		if err := os.MkdirAll(filepath.Dir(string(cfg.Storage.Path)), 0o700); err != nil {
			return nil, err
		}
		return sqlite.OpenWith(string(cfg.Storage.Path), sqlite.Options{FullSync: cfg.Storage.Sync == conf.SyncFull})
	}
	return nil, fmt.Errorf("storage driver %q is not available", cfg.Storage.Driver)
}

// NewLogger builds the logger the configuration asks for.
func NewLogger(cfg *conf.Config, fallback io.Writer) (*slog.Logger, error) {
	w := fallback
	if cfg.Log.File != "" {
		f, err := os.OpenFile(string(cfg.Log.File), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, err
		}
		w = f
	}
	opts := &slog.HandlerOptions{Level: cfg.Log.Level}
	if cfg.Log.Format == conf.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// New builds a server from cfg; nothing listens until Start.
func New(cfg *conf.Config, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.Limits.GCPercent)
	}
	cs, err := certs.New(string(cfg.TLS.Cert), string(cfg.TLS.Key), cfg.DataDir, cfg.Hosts)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	secret, err := persistentSecret(filepath.Join(cfg.DataDir, "sasl-secret"))
	if err != nil {
		store.Close()
		return nil, err
	}
	accounts := newAccountCache(store.Accounts(), accountRecheck, accountCacheSize)
	store = cachedStore{Store: store, accounts: accounts}
	s := &Server{Config: cfg, Log: log, Store: store, Certs: cs, errs: make(chan error, 8)}
	s.Router = router.New(log, cfg.IsLocal, accounts)
	opts := c2s.Options{
		Log:                      log,
		Router:                   s.Router,
		Accounts:                 store.Accounts(),
		TLS:                      cs.TLSConfig(uint16(cfg.TLS.MinVersion), "xmpp-client"),
		RequireTLS:               cfg.Auth.RequireTLS,
		AllowPlain:               cfg.Auth.AllowPlain,
		ChannelBinding:           cfg.Auth.ChannelBinding,
		SCRAMIterations:          cfg.Auth.SCRAMIterations,
		SASLSecret:               secret,
		MaxStanza:                int(cfg.Limits.MaxStanzaSize),
		MaxStanzaPreAuth:         int(cfg.Limits.PreAuthStanzaSize),
		SessionBuffer:            int(cfg.Limits.SessionBuffer),
		BytesBurst:               int(cfg.Limits.BytesBurst),
		NegotiationTimeout:       cfg.Limits.NegotiationTimeout,
		PingInterval:             cfg.Limits.PingInterval,
		PingTimeout:              cfg.Limits.PingTimeout,
		IdleRestack:              cfg.Limits.IdleRestack,
		OutboundQueue:            cfg.Limits.OutboundQueue,
		UnackedWrites:            cfg.Limits.UnackedWrites,
		MaxAuthFailures:          maxAuthFailures(cfg.Auth.MaxFailures),
		FailureDelay:             cfg.Auth.FailureDelay,
		IPFailuresPerMinute:      cfg.Auth.IPFailuresPerMinute,
		AccountFailuresPerMinute: cfg.Auth.AccountFailuresPerMinute,
		MaxConnsPerIP:            cfg.Limits.MaxConnectionsPerIP,
		MaxSessionsPerAccount:    cfg.Limits.MaxSessionsPerAccount,
		StanzasPerSecond:         cfg.Limits.StanzasPerSecond,
		BytesPerSecond:           int(cfg.Limits.BytesPerSecond),
		Extensions:               map[string]c2s.ExtHandler{},
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 100 * 365 * 24 * time.Hour // never
	}
	if opts.IdleRestack <= 0 {
		opts.IdleRestack = -1 // never
	}
	features, err := s.registerModules(&opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	opts.Features = func() []byte { return features }
	s.C2S = c2s.New(opts)
	return s, nil
}

// persistentSecret reads a 32-byte secret from path, creating it once.
func persistentSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

// Start opens every configured listener.
func (s *Server) Start() error {
	for _, l := range s.Config.Listeners.C2S {
		ln, err := net.Listen("tcp", string(l.Address))
		if err != nil {
			s.Shutdown(context.Background())
			return fmt.Errorf("c2s listener %s: %w", l.Address, err)
		}
		mode := c2s.StartTLS
		switch l.TLS {
		case conf.TLSDirect:
			mode = c2s.DirectTLS
		case conf.TLSNone:
			mode = c2s.NoTLS
		}
		s.mu.Lock()
		s.c2sAddrs = append(s.c2sAddrs, ln.Addr())
		s.mu.Unlock()
		s.Log.Info("c2s listening", "address", ln.Addr().String(), "tls", string(l.TLS))
		go func() {
			if err := s.C2S.Serve(ln, mode); err != nil {
				s.errs <- err
			}
		}()
	}
	for _, l := range s.Config.Listeners.HTTP {
		if err := s.startHTTP(l); err != nil {
			s.Shutdown(context.Background())
			return err
		}
	}
	return nil
}

func (s *Server) startHTTP(l conf.HTTPListener) error {
	mux := http.NewServeMux()
	// X-Forwarded-For / X-Forwarded-Proto / Forwarded are believed from
	// the trusted proxies only; a loopback peer is not trusted by itself.
	clientOf := c2s.BehindProxies(l.TrustedProxies)
	if l.WebSocketPath != "" {
		mux.Handle(l.WebSocketPath, s.C2S.WebSocketWith(clientOf))
	}
	if l.BOSHPath != "" {
		mux.Handle(l.BOSHPath, s.C2S.BOSH(c2s.BOSHOptions{ClientOf: clientOf}))
	}
	for _, rt := range s.httpRoutes {
		mux.Handle(rt.pattern, rt.h)
	}
	if l.HostMeta {
		mux.HandleFunc("/.well-known/host-meta", hostMeta(l.WebSocketPath, l.BOSHPath, false))
		mux.HandleFunc("/.well-known/host-meta.json", hostMeta(l.WebSocketPath, l.BOSHPath, true))
	}
	ln, err := net.Listen("tcp", string(l.Address))
	if err != nil {
		return fmt.Errorf("http listener %s: %w", l.Address, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug)}
	if l.TLS {
		hs.TLSConfig = s.Certs.TLSConfig(uint16(s.Config.TLS.MinVersion), "http/1.1")
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	s.mu.Lock()
	s.https = append(s.https, hs)
	s.httpAddrs = append(s.httpAddrs, ln.Addr())
	s.mu.Unlock()
	s.Log.Info("http listening", "address", ln.Addr().String(), "tls", l.TLS, "websocket", l.WebSocketPath)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- err
		}
	}()
	return nil
}

// C2SAddrs returns the bound c2s listener addresses, in config order.
func (s *Server) C2SAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.c2sAddrs...)
}

// HTTPAddrs returns the bound HTTP listener addresses, in config order.
func (s *Server) HTTPAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.httpAddrs...)
}

// Errors reports listeners that failed while serving.
func (s *Server) Errors() <-chan error { return s.errs }

// ReloadCertificates re-reads the certificate files (SIGHUP).
func (s *Server) ReloadCertificates() error { return s.Certs.Reload() }

// Shutdown ends every stream with <system-shutdown/>, stops the listeners
// and closes storage once the sessions are gone.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.C2S.Shutdown(ctx)
	s.mu.Lock()
	hs := s.https
	s.https = nil
	s.mu.Unlock()
	for _, h := range hs {
		_ = h.Shutdown(ctx)
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	if cerr := s.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// maxAuthFailures maps the configuration's max-failures (0 = unlimited) to
// c2s.Options.MaxAuthFailures (negative = unlimited).
func maxAuthFailures(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
