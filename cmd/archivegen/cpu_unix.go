//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPU is this process's user+system CPU time (all threads, SQLite's
// included): a rate that other load on the machine distorts less than wall
// time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
