//go:build !unix

package c2s

// waitReadable returns at once where the socket cannot be peeked at: the
// fresh goroutine then waits in an ordinary read.
func (r *reading) waitReadable() {}
