package jinglecall

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/webrtc/v4"
)

// SDP writes the candidate as an SDP attribute value (without "a="):
// candidate:<foundation> <component> <protocol> <priority> <ip> <port> typ
// <type> [raddr <a> rport <p>] [tcptype <t>] generation <g>. raddr/rport
// are written only when both are known (StanzaJS sends rel-addr 0.0.0.0
// without rel-port).
func (c Candidate) SDP() string {
	var b strings.Builder
	comp := c.Component
	if comp == 0 {
		comp = 1
	}
	proto := strings.ToLower(c.Protocol)
	if proto == "" {
		proto = "udp"
	}
	fmt.Fprintf(&b, "candidate:%s %d %s %d %s %d typ %s", c.Foundation, comp, proto, c.Priority, c.IP, c.Port, c.Type)
	if c.RelAddr != "" && c.RelPort != 0 {
		fmt.Fprintf(&b, " raddr %s rport %d", c.RelAddr, c.RelPort)
	}
	if c.TCPType != "" {
		b.WriteString(" tcptype " + c.TCPType)
	}
	g := c.Generation
	if g == "" {
		g = "0"
	}
	b.WriteString(" generation " + g)
	return b.String()
}

// ParseCandidate reads an SDP candidate attribute value (with or without
// the "candidate:" prefix, with or without "a=").
func ParseCandidate(v string) (Candidate, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "a=")
	v = strings.TrimPrefix(v, "candidate:")
	f := strings.Fields(v)
	if len(f) < 8 || f[6] != "typ" {
		return Candidate{}, fmt.Errorf("jinglecall: malformed candidate %q", v)
	}
	comp, err1 := strconv.ParseUint(f[1], 10, 16)
	prio, err2 := strconv.ParseUint(f[3], 10, 32)
	port, err3 := strconv.ParseUint(f[5], 10, 16)
	if err1 != nil || err2 != nil || err3 != nil {
		return Candidate{}, fmt.Errorf("jinglecall: malformed candidate %q", v)
	}
	c := Candidate{
		Foundation: f[0], Component: uint16(comp), Protocol: strings.ToLower(f[2]),
		Priority: uint32(prio), IP: f[4], Port: uint16(port), Type: f[7],
		Generation: "0", Network: "0", ID: newID(),
	}
	for i := 8; i+1 < len(f); i += 2 {
		switch f[i] {
		case "raddr":
			c.RelAddr = f[i+1]
		case "rport":
			p, _ := strconv.ParseUint(f[i+1], 10, 16)
			c.RelPort = uint16(p)
		case "tcptype":
			c.TCPType = f[i+1]
		case "generation":
			c.Generation = f[i+1]
		case "network-id":
			c.Network = f[i+1]
		}
	}
	return c, nil
}

// CandidateFromICE converts a local pion candidate.
func CandidateFromICE(ic webrtc.ICECandidate) Candidate {
	return Candidate{
		Component: ic.Component, Foundation: ic.Foundation, Generation: "0", Network: "0",
		ID: newID(), IP: ic.Address, Port: ic.Port, Priority: ic.Priority,
		Protocol: ic.Protocol.String(), Type: ic.Typ.String(),
		RelAddr: ic.RelatedAddress, RelPort: ic.RelatedPort, TCPType: ic.TCPType,
	}
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
