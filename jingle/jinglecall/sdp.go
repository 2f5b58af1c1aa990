package jinglecall

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Role is a party of a Jingle session.
type Role string

// The two roles.
const (
	Initiator Role = "initiator"
	Responder Role = "responder"
)

// Other returns the other role.
func (r Role) Other() Role {
	if r == Initiator {
		return Responder
	}
	return Initiator
}

// Direction maps a content's senders (both, initiator, responder, none) to
// the SDP direction attribute of a description written by author:
// "initiator" is sendonly in the initiator's SDP and recvonly in the
// responder's.
func Direction(senders string, author Role) string {
	switch senders {
	case "", "both":
		return "sendrecv"
	case "none":
		return "inactive"
	case string(author):
		return "sendonly"
	default:
		return "recvonly"
	}
}

// Senders maps an SDP direction in a description written by author to the
// Jingle senders value.
func Senders(direction string, author Role) string {
	switch direction {
	case "sendonly":
		return string(author)
	case "recvonly":
		return string(author.Other())
	case "inactive":
		return "none"
	}
	return "both"
}

// SDPToJingle converts an SDP offer or answer written by author into
// Jingle contents (one per audio/video media section, named after its
// a=mid) and groups (a=group, e.g. BUNDLE). creator, when not nil, gives the
// creator of each content by name; the default is "initiator". ICE
// candidates present in the SDP are kept in the transports. Media sections
// that are not audio or video (data channels) or were rejected (port 0) are
// left out.
func SDPToJingle(text string, author Role, creator func(name string) Role) ([]Content, []Group, error) {
	var s sdp.SessionDescription
	if err := s.UnmarshalString(text); err != nil {
		return nil, nil, fmt.Errorf("jinglecall: parsing SDP: %w", err)
	}
	var (
		sessFP            []Fingerprint
		sessSetup         string
		sessUfrag         string
		sessPwd           string
		sessAllowMixed    bool
		sessExt           []HeaderExt
		groups            []Group
		sessionAttributes = s.Attributes
	)
	for _, a := range sessionAttributes {
		switch a.Key {
		case "fingerprint":
			if fp, ok := parseFingerprint(a.Value); ok {
				sessFP = append(sessFP, fp)
			}
		case "setup":
			sessSetup = a.Value
		case "ice-ufrag":
			sessUfrag = a.Value
		case "ice-pwd":
			sessPwd = a.Value
		case "extmap-allow-mixed":
			sessAllowMixed = true
		case "extmap":
			if e, ok := parseExtmap(a.Value, author); ok {
				sessExt = append(sessExt, e)
			}
		case "group":
			f := strings.Fields(a.Value)
			if len(f) > 0 {
				groups = append(groups, NewGroup(f[0], f[1:]...))
			}
		}
	}
	var contents []Content
	for i, md := range s.MediaDescriptions {
		media := md.MediaName.Media
		if media != "audio" && media != "video" {
			continue
		}
		if md.MediaName.Port.Value == 0 {
			continue
		}
		name := strconv.Itoa(i)
		if mid, ok := md.Attribute("mid"); ok && mid != "" {
			name = mid
		}
		cr := Initiator
		if creator != nil {
			if c := creator(name); c != "" {
				cr = c
			}
		}
		d := &Description{Media: media}
		t := &Transport{Ufrag: sessUfrag, Pwd: sessPwd}
		var fps []Fingerprint
		setup := sessSetup
		direction := "sendrecv"
		allowMixed := sessAllowMixed
		ext := append([]HeaderExt(nil), sessExt...)
		pts := map[uint8]*PayloadType{}
		for _, f := range md.MediaName.Formats {
			id, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			d.PayloadTypes = append(d.PayloadTypes, PayloadType{ID: uint8(id)})
		}
		for i := range d.PayloadTypes {
			pts[d.PayloadTypes[i].ID] = &d.PayloadTypes[i]
		}
		var ptime, maxptime uint32
		sources := map[uint32]*Source{}
		var order []uint32
		var msid string
		for _, a := range md.Attributes {
			switch a.Key {
			case "ice-ufrag":
				t.Ufrag = a.Value
			case "ice-pwd":
				t.Pwd = a.Value
			case "fingerprint":
				if fp, ok := parseFingerprint(a.Value); ok {
					fps = append(fps, fp)
				}
			case "setup":
				setup = a.Value
			case "sendrecv", "sendonly", "recvonly", "inactive":
				direction = a.Key
			case "rtcp-mux":
				d.RTCPMux = &Empty{}
			case "rtcp-rsize":
				d.ReducedSize = &Empty{}
			case "extmap-allow-mixed":
				allowMixed = true
			case "extmap":
				if e, ok := parseExtmap(a.Value, author); ok {
					ext = append(ext, e)
				}
			case "rtpmap":
				id, rest, ok := ptValue(a.Value)
				if p := pts[id]; ok && p != nil {
					parts := strings.Split(rest, "/")
					p.Name = parts[0]
					if len(parts) > 1 {
						v, _ := strconv.ParseUint(parts[1], 10, 32)
						p.ClockRate = uint32(v)
					}
					if len(parts) > 2 {
						v, _ := strconv.ParseUint(parts[2], 10, 16)
						p.Channels = uint16(v)
					}
				}
			case "fmtp":
				id, rest, ok := ptValue(a.Value)
				if p := pts[id]; ok && p != nil {
					p.Parameters = append(p.Parameters, parseFmtp(rest)...)
				}
			case "rtcp-fb":
				pt, rest, _ := strings.Cut(a.Value, " ")
				fb := parseFeedback(rest)
				if fb.Type == "" {
					continue
				}
				if pt == "*" {
					d.Feedback = append(d.Feedback, fb)
				} else if id, err := strconv.ParseUint(pt, 10, 7); err == nil && pts[uint8(id)] != nil {
					p := pts[uint8(id)]
					p.Feedback = append(p.Feedback, fb)
				}
			case "ptime":
				v, _ := strconv.ParseUint(strings.TrimSpace(a.Value), 10, 32)
				ptime = uint32(v)
			case "maxptime":
				v, _ := strconv.ParseUint(strings.TrimSpace(a.Value), 10, 32)
				maxptime = uint32(v)
			case "ssrc":
				id, rest, _ := strings.Cut(a.Value, " ")
				v, err := strconv.ParseUint(id, 10, 32)
				if err != nil {
					continue
				}
				ssrc := uint32(v)
				src := sources[ssrc]
				if src == nil {
					src = &Source{SSRC: ssrc}
					sources[ssrc] = src
					order = append(order, ssrc)
				}
				if rest != "" {
					k, val, _ := strings.Cut(rest, ":")
					src.Parameters = append(src.Parameters, Parameter{Name: k, Value: val})
				}
			case "ssrc-group":
				f := strings.Fields(a.Value)
				if len(f) < 2 {
					continue
				}
				g := SourceGroup{Semantics: f[0]}
				for _, x := range f[1:] {
					v, err := strconv.ParseUint(x, 10, 32)
					if err != nil {
						continue
					}
					g.Sources = append(g.Sources, struct {
						SSRC uint32 `xml:"ssrc,attr"`
					}{uint32(v)})
				}
				d.SourceGroups = append(d.SourceGroups, g)
			case "msid":
				msid = a.Value
			case "candidate":
				if c, err := ParseCandidate(a.Value); err == nil {
					t.Candidates = append(t.Candidates, c)
				}
			}
		}
		for i := range d.PayloadTypes {
			d.PayloadTypes[i].PTime, d.PayloadTypes[i].MaxPTime = ptime, maxptime
		}
		for _, ssrc := range order {
			src := sources[ssrc]
			if msid != "" && !hasParam(src.Parameters, "msid") {
				src.Parameters = append(src.Parameters, Parameter{Name: "msid", Value: msid})
			}
			d.Sources = append(d.Sources, *src)
		}
		if len(order) > 0 {
			d.SSRC = strconv.FormatUint(uint64(order[0]), 10)
		}
		d.HeaderExts = ext
		if allowMixed {
			d.ExtmapAllowMixed = &Empty{}
		}
		if len(fps) == 0 {
			fps = append(fps, sessFP...)
		}
		for i := range fps {
			fps[i].Setup = setup
		}
		t.Fingerprints = fps
		contents = append(contents, Content{
			Creator: string(cr), Name: name, Senders: Senders(direction, author),
			Description: d, Transport: t,
		})
	}
	if len(contents) == 0 {
		return nil, nil, errors.New("jinglecall: the SDP has no audio or video")
	}
	return contents, groups, nil
}

func hasParam(ps []Parameter, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func ptValue(v string) (uint8, string, bool) {
	pt, rest, _ := strings.Cut(v, " ")
	id, err := strconv.ParseUint(pt, 10, 7)
	if err != nil {
		return 0, "", false
	}
	return uint8(id), strings.TrimSpace(rest), true
}

func parseFingerprint(v string) (Fingerprint, bool) {
	hash, val, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return Fingerprint{}, false
	}
	return Fingerprint{Hash: strings.ToLower(hash), Value: strings.TrimSpace(val)}, true
}

// parseExtmap reads "ID[/DIRECTION] URI [ATTRIBUTES]".
func parseExtmap(v string, author Role) (HeaderExt, bool) {
	f := strings.Fields(v)
	if len(f) < 2 {
		return HeaderExt{}, false
	}
	idStr, dir, _ := strings.Cut(f[0], "/")
	id, err := strconv.Atoi(idStr)
	if err != nil {
		return HeaderExt{}, false
	}
	e := HeaderExt{ID: id, URI: f[1]}
	if dir != "" {
		e.Senders = Senders(dir, author)
	}
	return e, true
}

// parseFmtp splits "a=1;b=2" (or a bare "111/111") into parameters.
func parseFmtp(v string) []Parameter {
	var out []Parameter
	for _, kv := range strings.Split(v, ";") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			out = append(out, Parameter{Name: kv})
			continue
		}
		out = append(out, Parameter{Name: strings.TrimSpace(k), Value: strings.TrimSpace(val)})
	}
	return out
}

func parseFeedback(v string) Feedback {
	f := strings.Fields(v)
	switch len(f) {
	case 0:
		return Feedback{}
	case 1:
		return Feedback{Type: f[0]}
	}
	return Feedback{Type: f[0], Subtype: strings.Join(f[1:], " ")}
}

// JingleToSDP writes the SDP that contents and groups, written by author,
// describe: an offer when author is the initiator of a session-initiate,
// an answer for a session-accept. Contents without an RTP description or
// an ICE-UDP transport are left out; a missing DTLS setup defaults to
// actpass in an offer and active in an answer.
func JingleToSDP(contents []Content, groups []Group, author Role) (string, error) {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- %d 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", binary.BigEndian.Uint64(idb[:])>>2)
	for _, g := range groups {
		b.WriteString("a=group:" + g.Semantics)
		for _, c := range g.Contents {
			b.WriteString(" " + c.Name)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("a=msid-semantic:WMS *\r\n")
	n := 0
	for _, c := range contents {
		d, t := c.Description, c.Transport
		if d == nil || t == nil || (d.Media != "audio" && d.Media != "video") {
			continue
		}
		n++
		if len(d.PayloadTypes) == 0 {
			fmt.Fprintf(&b, "m=%s 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:%s\r\na=inactive\r\n", d.Media, c.Name)
			continue
		}
		fmt.Fprintf(&b, "m=%s 9 UDP/TLS/RTP/SAVPF", d.Media)
		for _, p := range d.PayloadTypes {
			fmt.Fprintf(&b, " %d", p.ID)
		}
		b.WriteString("\r\nc=IN IP4 0.0.0.0\r\n")
		b.WriteString("a=mid:" + c.Name + "\r\n")
		if t.Ufrag != "" {
			b.WriteString("a=ice-ufrag:" + t.Ufrag + "\r\n")
		}
		if t.Pwd != "" {
			b.WriteString("a=ice-pwd:" + t.Pwd + "\r\n")
		}
		setup := ""
		for _, fp := range t.Fingerprints {
			b.WriteString("a=fingerprint:" + fp.Hash + " " + strings.TrimSpace(fp.Value) + "\r\n")
			if setup == "" {
				setup = fp.Setup
			}
		}
		if setup == "" {
			setup = "actpass"
			if author == Responder {
				setup = "active"
			}
		}
		b.WriteString("a=setup:" + setup + "\r\n")
		b.WriteString("a=" + Direction(c.Senders, author) + "\r\n")
		if d.RTCPMux != nil {
			b.WriteString("a=rtcp-mux\r\n")
		}
		if d.ReducedSize != nil {
			b.WriteString("a=rtcp-rsize\r\n")
		}
		if d.ExtmapAllowMixed != nil {
			b.WriteString("a=extmap-allow-mixed\r\n")
		}
		for _, e := range d.HeaderExts {
			dir := ""
			if e.Senders != "" && e.Senders != "both" {
				dir = "/" + Direction(e.Senders, author)
			}
			fmt.Fprintf(&b, "a=extmap:%d%s %s\r\n", e.ID, dir, e.URI)
		}
		var ptime, maxptime uint32
		for _, p := range d.PayloadTypes {
			if p.Name != "" && p.ClockRate != 0 {
				fmt.Fprintf(&b, "a=rtpmap:%d %s/%d", p.ID, p.Name, p.ClockRate)
				if p.Channels > 1 {
					fmt.Fprintf(&b, "/%d", p.Channels)
				}
				b.WriteString("\r\n")
			}
			if len(p.Parameters) > 0 {
				fmt.Fprintf(&b, "a=fmtp:%d ", p.ID)
				for i, prm := range p.Parameters {
					if i > 0 {
						b.WriteString(";")
					}
					b.WriteString(prm.Name)
					if prm.Value != "" {
						b.WriteString("=" + prm.Value)
					}
				}
				b.WriteString("\r\n")
			}
			// Description-level feedback applies to every payload type;
			// written per payload type (not a=rtcp-fb:*), which every
			// parser understands.
			for _, fb := range append(append([]Feedback(nil), p.Feedback...), d.Feedback...) {
				fmt.Fprintf(&b, "a=rtcp-fb:%d %s", p.ID, fb.Type)
				if fb.Subtype != "" {
					b.WriteString(" " + fb.Subtype)
				}
				b.WriteString("\r\n")
			}
			if p.PTime > ptime {
				ptime = p.PTime
			}
			if p.MaxPTime > maxptime {
				maxptime = p.MaxPTime
			}
		}
		if ptime > 0 {
			fmt.Fprintf(&b, "a=ptime:%d\r\n", ptime)
		}
		if maxptime > 0 {
			fmt.Fprintf(&b, "a=maxptime:%d\r\n", maxptime)
		}
		for _, g := range d.SourceGroups {
			b.WriteString("a=ssrc-group:" + g.Semantics)
			for _, s := range g.Sources {
				fmt.Fprintf(&b, " %d", s.SSRC)
			}
			b.WriteString("\r\n")
		}
		msid := ""
		for _, s := range d.Sources {
			if len(s.Parameters) == 0 {
				fmt.Fprintf(&b, "a=ssrc:%d\r\n", s.SSRC)
			}
			for _, prm := range s.Parameters {
				fmt.Fprintf(&b, "a=ssrc:%d %s", s.SSRC, prm.Name)
				if prm.Value != "" {
					b.WriteString(":" + prm.Value)
				}
				b.WriteString("\r\n")
				if prm.Name == "msid" && msid == "" {
					msid = prm.Value
				}
			}
		}
		if msid != "" {
			b.WriteString("a=msid:" + msid + "\r\n")
		}
		for _, cand := range t.Candidates {
			b.WriteString("a=" + cand.SDP() + "\r\n")
		}
	}
	if n == 0 {
		return "", errors.New("jinglecall: no RTP content with an ICE-UDP transport")
	}
	return b.String(), nil
}
