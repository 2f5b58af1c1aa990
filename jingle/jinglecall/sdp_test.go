package jinglecall

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

func newTestPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// roundTrip marshals and unmarshals a Jingle element, as the wire does.
func roundTrip(t *testing.T, j Jingle) Jingle {
	t.Helper()
	raw := marshal(j)
	var out Jingle
	if err := xml.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("unmarshal %s: %v", raw, err)
	}
	return out
}

// A pion offer survives SDP → Jingle → XML → Jingle → SDP, pion accepts it,
// and its answer comes back the same way.
func TestSDPJingleRoundTrip(t *testing.T) {
	a, b := newTestPC(t), newTestPC(t)
	at, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "alice")
	vt, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "alice")
	if _, err := a.AddTrack(at); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddTrack(vt); err != nil {
		t.Fatal(err)
	}
	offer, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	contents, groups, err := SDPToJingle(offer.SDP, Initiator, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := roundTrip(t, Jingle{Action: "session-initiate", SID: "s1", Initiator: "a@x/1", Contents: contents, Groups: groups})
	if len(j.Contents) != 2 || j.Contents[0].Name != "0" || j.Contents[1].Name != "1" {
		t.Fatalf("contents %+v", j.Contents)
	}
	if len(j.Groups) != 1 || j.Groups[0].Semantics != "BUNDLE" || len(j.Groups[0].Contents) != 2 {
		t.Fatalf("groups %+v", j.Groups)
	}
	au := j.Contents[0]
	if au.Creator != "initiator" || au.Senders != "both" || au.Description.Media != "audio" {
		t.Errorf("audio content %+v", au)
	}
	if au.Description.RTCPMux == nil || au.Description.PayloadTypes[0].Name != "opus" || au.Description.PayloadTypes[0].Channels != 2 {
		t.Errorf("audio description %+v", au.Description)
	}
	if len(au.Description.Sources) != 1 || !hasParam(au.Description.Sources[0].Parameters, "cname") || !hasParam(au.Description.Sources[0].Parameters, "msid") {
		t.Errorf("sources %+v", au.Description.Sources)
	}
	if len(au.Transport.Fingerprints) != 1 || au.Transport.Fingerprints[0].Setup != "actpass" || au.Transport.Ufrag == "" {
		t.Errorf("transport %+v", au.Transport)
	}
	vp8 := j.Contents[1].Description.PayloadTypes[0]
	if vp8.Name != "VP8" || len(vp8.Feedback) == 0 {
		t.Errorf("vp8 %+v", vp8)
	}
	raw := marshal(j)
	for _, want := range []string{
		`<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s1"`,
		`<description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"`,
		`<rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack" subtype="pli">`,
		`<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc=`,
		`<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag=`,
		`<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">`,
		`<group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics="BUNDLE"><content name="0"></content><content name="1"></content></group>`,
		`<rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id=`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("missing %s in %s", want, raw)
		}
	}

	sdpOffer, err := JingleToSDP(j.Contents, j.Groups, Initiator)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdpOffer}); err != nil {
		t.Fatalf("pion refuses the offer: %v\n%s", err, sdpOffer)
	}
	// bob sends audio only: video becomes recvonly on his side.
	bt, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "bob")
	if _, err := b.AddTrack(bt); err != nil {
		t.Fatal(err)
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	ac, ag, err := SDPToJingle(answer.SDP, Responder, func(string) Role { return Initiator })
	if err != nil {
		t.Fatal(err)
	}
	ja := roundTrip(t, Jingle{Action: "session-accept", SID: "s1", Contents: ac, Groups: ag})
	if ja.Contents[0].Senders != "both" || ja.Contents[1].Senders != "initiator" || ja.Contents[1].Creator != "initiator" {
		t.Errorf("answer senders/creator %+v / %+v", ja.Contents[0], ja.Contents[1])
	}
	if fp := ja.Contents[0].Transport.Fingerprints; len(fp) != 1 || fp[0].Setup != "active" {
		t.Errorf("answer fingerprint %+v", fp)
	}
	sdpAnswer, err := JingleToSDP(ja.Contents, ja.Groups, Responder)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sdpAnswer, "a=group:BUNDLE 0 1") || !strings.Contains(sdpAnswer, "a=recvonly") {
		t.Errorf("answer SDP:\n%s", sdpAnswer)
	}
	if err := a.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdpAnswer}); err != nil {
		t.Fatalf("pion refuses the answer: %v\n%s", err, sdpAnswer)
	}
}

func TestDirections(t *testing.T) {
	for _, c := range []struct {
		senders string
		author  Role
		dir     string
	}{
		{"both", Initiator, "sendrecv"}, {"", Responder, "sendrecv"}, {"none", Initiator, "inactive"},
		{"initiator", Initiator, "sendonly"}, {"initiator", Responder, "recvonly"},
		{"responder", Responder, "sendonly"}, {"responder", Initiator, "recvonly"},
	} {
		if got := Direction(c.senders, c.author); got != c.dir {
			t.Errorf("Direction(%q, %s) = %s, want %s", c.senders, c.author, got, c.dir)
		}
		if c.senders == "" {
			continue
		}
		if got := Senders(c.dir, c.author); got != c.senders {
			t.Errorf("Senders(%s, %s) = %s, want %s", c.dir, c.author, got, c.senders)
		}
	}
}

// What StanzaJS puts on the wire (the notes, section 4) maps to SDP pion
// takes: lenient candidates, a bare fmtp token, description-level rtcp-fb.
func TestStanzaJSOffer(t *testing.T) {
	const offer = `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='u1' initiator='a@x/web'>
<content creator='initiator' name='0'>
  <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio' ssrc='2899784981'>
    <rtcp-mux/><rtcp-reduced-size/>
    <payload-type id='111' name='opus' clockrate='48000' channels='2'>
      <parameter name='minptime' value='10'/><parameter name='useinbandfec' value='1'/>
      <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>
    </payload-type>
    <payload-type id='63' name='red' clockrate='48000' channels='2'><parameter name='111/111'/></payload-type>
    <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack'/>
    <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>
    <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2899784981'>
      <parameter name='cname' value='xyz'/><parameter name='msid' value='STREAM TRACK'/></source>
    <stream xmlns='urn:xmpp:jingle:apps:rtp:msid:0' id='STREAM' track='TRACK'/>
  </description>
  <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='A5s9' pwd='asd88fgpdd777uzjYhagZg9c'>
    <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>DD:AD:8E:0F:9E:3D:5C:DF:1E:F5:AE:5A:EC:2E:D1:7F:7D:69:A1:7F:3A:7E:0A:63:3D:DA:D0:A2:C4:F5:0D:3E</fingerprint>
    <candidate component='1' foundation='1' ip='192.0.2.7' port='50000' priority='12345' protocol='udp' type='relay' rel-addr='0.0.0.0'/>
  </transport>
</content>
<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='0'/></group>
</jingle>`
	var j Jingle
	if err := xml.Unmarshal([]byte(offer), &j); err != nil {
		t.Fatal(err)
	}
	s, err := JingleToSDP(j.Contents, j.Groups, Initiator)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"a=group:BUNDLE 0\r\n", "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n", "a=mid:0\r\n", "a=fmtp:63 111/111\r\n",
		"a=fmtp:111 minptime=10;useinbandfec=1\r\n", "a=rtcp-fb:111 transport-cc\r\n", "a=rtcp-fb:111 nack\r\n",
		"a=rtcp-fb:63 nack\r\n", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
		"a=ssrc:2899784981 msid:STREAM TRACK\r\n", "a=setup:actpass\r\n", "a=rtcp-mux\r\n", "a=rtcp-rsize\r\n",
		"a=candidate:1 1 udp 12345 192.0.2.7 50000 typ relay generation 0\r\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	pc := newTestPC(t)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: s}); err != nil {
		t.Fatalf("pion refuses: %v\n%s", err, s)
	}
}

func TestCandidate(t *testing.T) {
	c, err := ParseCandidate("candidate:3 1 UDP 2130706431 127.0.0.1 5000 typ relay raddr 10.0.0.1 rport 6000 generation 0 ufrag x")
	if err != nil {
		t.Fatal(err)
	}
	if c.Protocol != "udp" || c.Type != "relay" || c.RelAddr != "10.0.0.1" || c.RelPort != 6000 || c.Port != 5000 {
		t.Fatalf("%+v", c)
	}
	if got := c.SDP(); got != "candidate:3 1 udp 2130706431 127.0.0.1 5000 typ relay raddr 10.0.0.1 rport 6000 generation 0" {
		t.Fatalf("SDP() = %s", got)
	}
	if _, err := ParseCandidate("candidate:1 1 udp"); err == nil {
		t.Fatal("short candidate accepted")
	}
}

func TestServiceURLs(t *testing.T) {
	svcs := []Service{
		{Type: "stun", Host: "127.0.0.1", Port: 3478, Transport: "udp"},
		{Type: "turn", Host: "127.0.0.1", Port: 3478, Transport: "udp", Username: "1:a@x", Password: "p"},
		{Type: "turn", Host: "127.0.0.1", Port: 3478, Transport: "tcp", Username: "1:a@x", Password: "p"},
		{Type: "turns", Host: "turn.example", Port: 5349, Transport: "tcp", Username: "1:a@x", Password: "p"},
		{Type: "turn", Host: "127.0.0.1", Port: 3478, Transport: "udp"},                                // no credentials
		{Type: "turns", Host: "127.0.0.1", Port: 5349, Transport: "udp", Username: "u", Password: "p"}, // TLS over udp
		{Type: "stun", Host: "::1", Port: 3478, Transport: "udp"},
	}
	var urls []string
	for _, s := range ICEServers(svcs, nil) {
		urls = append(urls, s.URLs...)
		if strings.HasPrefix(s.URLs[0], "turn") && (s.Username == "" || s.Credential == "") {
			t.Errorf("%v without credentials", s.URLs)
		}
	}
	want := "stun:127.0.0.1:3478 turn:127.0.0.1:3478?transport=udp turn:127.0.0.1:3478?transport=tcp turns:turn.example:5349?transport=tcp stun:[::1]:3478"
	if got := strings.Join(urls, " "); got != want {
		t.Errorf("urls\n got %s\nwant %s", got, want)
	}
	// pion accepts every one of them.
	if _, err := webrtc.NewPeerConnection(webrtc.Configuration{ICEServers: ICEServers(svcs, nil)}); err != nil {
		t.Fatal(err)
	}
	udp := ICEServers(svcs, func(s Service) bool { return s.Type == "turn" && s.Transport == "udp" })
	if len(udp) != 1 {
		t.Errorf("filter: %v", udp)
	}
}
