//go:build pprof

package main

// Built with -tags pprof (benchmarks only, never in a release), xmppd
// serves net/http/pprof on the address in XMPPD_PPROF (use a loopback
// address): xmppbench -pprof reads the Go memory accounting from it, and
// CPU and heap profiles come from it. See docs/BENCHMARKS.md.

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("XMPPD_PPROF"); addr != "" {
		go func() {
			slog.Error("pprof listener", "err", http.ListenAndServe(addr, nil)) //nolint:gosec // benchmark builds only
		}()
	}
}
