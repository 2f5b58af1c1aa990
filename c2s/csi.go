package c2s

import (
	"bytes"

	"github.com/xmppd/xmppd/wire"
)

// XEP-0352 Client State Indication: while a client says it is inactive,
// presence updates and chat-state-only messages are held (the newest per
// sender replaces older ones); anything else (messages with a body,
// receipts, Jingle Message Initiation, iqs, subscription requests) goes out
// at once. <active/> flushes what is held, in arrival order.

const nsCSI = "urn:xmpp:csi:0"

type clientState struct {
	inactive bool
	keys     []string // held keys in arrival order of their first element
	held     map[string][]byte
	bytes    int // the size of what is held (Options.SessionBuffer)
}

// hold keeps raw if it can wait; false if it must go out now.
func (c *clientState) hold(raw []byte) bool {
	key, ok := holdKey(raw)
	if !ok {
		return false
	}
	if c.held == nil {
		c.held = make(map[string][]byte)
	}
	if old, seen := c.held[key]; !seen {
		c.keys = append(c.keys, key)
	} else {
		c.bytes -= len(old)
	}
	c.held[key] = raw
	c.bytes += len(raw)
	return true
}

// take returns what is held, in order, and forgets it.
func (c *clientState) take() [][]byte {
	out := make([][]byte, 0, len(c.keys))
	for _, k := range c.keys {
		out = append(out, c.held[k])
	}
	c.keys, c.held, c.bytes = nil, nil, 0
	return out
}

// holdKey classifies an outgoing stanza: presence (available or
// unavailable) and chat-state-only messages can wait, keyed by sender.
func holdKey(raw []byte) (string, bool) {
	isPresence := bytes.HasPrefix(raw, []byte("<presence"))
	isMessage := bytes.HasPrefix(raw, []byte("<message"))
	if !isPresence && !isMessage {
		return "", false
	}
	st, err := wire.ParseElement(raw, wire.NSClient)
	if err != nil {
		return "", false
	}
	if isPresence {
		if st.Type != "" && st.Type != "unavailable" {
			return "", false // subscriptions, probes and errors go at once
		}
		return "p " + st.From, true
	}
	if st.Type == "error" || st.PayloadNS != "http://jabber.org/protocol/chatstates" {
		return "", false
	}
	for _, name := range []string{"body", "encrypted", "propose", "received", "request"} {
		if st.HasChild("", name) || st.HasChild(wire.NSClient, name) {
			return "", false
		}
	}
	// Only a chat state (maybe with hints or thread): it can wait.
	if bytes.Contains(raw, []byte("<body")) || bytes.Contains(raw, []byte("urn:xmpp:receipts")) ||
		bytes.Contains(raw, []byte("urn:xmpp:jingle-message")) || bytes.Contains(raw, []byte("<encrypted")) {
		return "", false
	}
	return "c " + st.From, true
}

func (s *Session) handleCSI(st *wire.Stanza) error {
	switch st.Name {
	case "inactive":
		s.mu.Lock()
		s.csi.inactive = true
		s.mu.Unlock()
	case "active":
		s.mu.Lock()
		s.csi.inactive = false
		held := s.csi.take()
		s.mu.Unlock()
		for _, raw := range held {
			s.Send(raw)
		}
	default:
		return streamErr("unsupported-stanza-type", "")
	}
	return nil
}
