package calls

// InGrace returns how many parties of tracked calls are in their grace
// period (lost their link, timer running).
func (m *Module) InGrace() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, cl := range m.calls {
		n += len(cl.lost)
	}
	return n
}
