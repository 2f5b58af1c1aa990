//go:build !linux

package c2s

// parkState is empty where idle links cannot wait without a goroutine.
type parkState struct{}

// park reports false: without epoll an idle link waits in a goroutine.
func (r *reading) park() bool { return false }

func (t *tcpTransport) closeParked() {}
