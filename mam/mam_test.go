package mam_test

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/mam"
	"github.com/xmppd/xmppd/server/servertest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

const (
	timeout = 20 * time.Second
	pw      = "secret-pw"
)

// result is one archived message as a query returned it.
type result struct {
	QueryID, ID string
	Stamp       time.Time
	Msg         fwd // the forwarded message
	Raw         string
}

type fwd struct {
	From      string `xml:"from,attr"`
	To        string `xml:"to,attr"`
	ID        string `xml:"id,attr"`
	Type      string `xml:"type,attr"`
	Body      *string
	Retracted *struct {
		ID    string `xml:"id,attr"`
		Stamp string `xml:"stamp,attr"`
	}
	Inner string `xml:",innerxml"`
}

type resultMsg struct {
	To     string `xml:"to,attr"`
	From   string `xml:"from,attr"`
	Result struct {
		QueryID   string `xml:"queryid,attr"`
		ID        string `xml:"id,attr"`
		Forwarded struct {
			Delay struct {
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
			Message struct {
				fwd
				Body      *string `xml:"jabber:client body"`
				Retracted *struct {
					ID    string `xml:"id,attr"`
					Stamp string `xml:"stamp,attr"`
				} `xml:"urn:xmpp:message-retract:1 retracted"`
			} `xml:"jabber:client message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:mam:2 result"`
}

// fin is the closing iq result of a query.
type fin struct {
	Complete string `xml:"complete,attr"`
	Stable   string `xml:"stable,attr"`
	Set      struct {
		First struct {
			Index *int   `xml:"index,attr"`
			ID    string `xml:",chardata"`
		} `xml:"first"`
		Last  string `xml:"last"`
		Count *int   `xml:"count"`
	} `xml:"http://jabber.org/protocol/rsm set"`
}

var qn atomic.Int64

// query runs an archive query: form fields (var → values) and an RSM
// <set/> body; it returns the results and the fin, or the error stanza.
func query(t *testing.T, c *client.Client, to string, fields [][2]string, rsm string, extra string) ([]result, *fin, *wire.Stanza) {
	t.Helper()
	n := qn.Add(1)
	qid, iqid := fmt.Sprintf("qid%d", n), fmt.Sprintf("q%d", n)
	var b strings.Builder
	b.WriteString("<iq type='set' id='" + iqid + "'")
	if to != "" {
		b.WriteString(" to='" + to + "'")
	}
	b.WriteString("><query xmlns='urn:xmpp:mam:2' queryid='" + qid + "'>")
	if fields != nil {
		b.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>")
		for _, f := range fields {
			b.WriteString("<field var='" + f[0] + "'><value>" + f[1] + "</value></field>")
		}
		b.WriteString("</x>")
	}
	if rsm != "" {
		b.WriteString("<set xmlns='http://jabber.org/protocol/rsm'>" + rsm + "</set>")
	}
	b.WriteString(extra + "</query></iq>")
	if err := c.Send(b.String()); err != nil {
		t.Fatal(err)
	}
	var out []result
	for {
		st, err := c.Expect(timeout, func(st *wire.Stanza) bool {
			return st.ID == iqid || (st.Kind == wire.KindMessage && client.Contains(st, "urn:xmpp:mam:2"))
		})
		if err != nil {
			t.Fatalf("query %s: %v", b.String(), err)
		}
		if st.Kind == wire.KindIQ {
			if st.Type == "error" {
				return out, nil, st
			}
			var v struct {
				Fin fin `xml:"urn:xmpp:mam:2 fin"`
			}
			if err := st.Decode(&v); err != nil {
				t.Fatalf("fin %s: %v", st.Raw, err)
			}
			return out, &v.Fin, nil
		}
		var m resultMsg
		if err := st.Decode(&m); err != nil {
			t.Fatalf("result %s: %v", st.Raw, err)
		}
		if m.Result.QueryID != qid {
			t.Fatalf("result for query %q, want %q: %s", m.Result.QueryID, qid, st.Raw)
		}
		if m.To != c.JID {
			t.Fatalf("result sent to %q, want the querying resource %q", m.To, c.JID)
		}
		ts, err := time.Parse(time.RFC3339Nano, m.Result.Forwarded.Delay.Stamp)
		if err != nil {
			t.Fatalf("delay stamp in %s: %v", st.Raw, err)
		}
		f := m.Result.Forwarded.Message.fwd
		f.Body, f.Retracted = m.Result.Forwarded.Message.Body, m.Result.Forwarded.Message.Retracted
		out = append(out, result{QueryID: m.Result.QueryID, ID: m.Result.ID, Stamp: ts, Msg: f, Raw: string(st.Raw)})
	}
}

func queryErr(t *testing.T, c *client.Client, fields [][2]string, rsm, cond string) {
	t.Helper()
	_, _, e := query(t, c, "", fields, rsm, "")
	if e == nil || !client.Contains(e, "<"+cond+" ") {
		raw := "<nil>"
		if e != nil {
			raw = string(e.Raw)
		}
		t.Errorf("query %v %s: want %s, got %s", fields, rsm, cond, raw)
	}
}

func bodies(rs []result) []string {
	var out []string
	for _, r := range rs {
		if r.Msg.Body == nil {
			out = append(out, "<nil>")
		} else {
			out = append(out, *r.Msg.Body)
		}
	}
	return out
}

// syncWith waits until the server processed everything c sent before.
func syncWith(t *testing.T, c *client.Client) {
	t.Helper()
	id := fmt.Sprintf("sync%d", qn.Add(1))
	if _, err := c.IQ(timeout, "<iq type='get' id='"+id+"'><ping xmlns='urn:xmpp:ping'/></iq>", id); err != nil {
		t.Fatal(err)
	}
}

// stanzaID returns the stanza-id by 'by' of a delivered message.
func stanzaID(t *testing.T, st *wire.Stanza, by string) (string, int) {
	t.Helper()
	id, n := "", 0
	for ch := range st.Children() {
		if ch.Name == "stanza-id" && ch.NS == mam.NSSID {
			if b, _ := ch.Attr("by"); b == by {
				id, _ = ch.Attr("id")
				n++
			}
		}
	}
	return id, n
}

func start(t *testing.T, edit func(*conf.Config)) *servertest.Env {
	t.Helper()
	e := servertest.Start(t, edit)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.AddUser(u, pw)
	}
	return e
}

func online(t *testing.T, e *servertest.Env, user, res string) *client.Client {
	t.Helper()
	c := e.Login(user, pw, res)
	if err := c.Send("<presence/>"); err != nil {
		t.Fatal(err)
	}
	syncWith(t, c)
	return c
}

func chat(to, id, body string) string {
	return "<message type='chat' to='" + to + "' id='" + id + "'><body>" + body + "</body><origin-id xmlns='urn:xmpp:sid:0' id='" + id + "'/></message>"
}

func expectMsg(t *testing.T, c *client.Client, match func(*wire.Stanza) bool) *wire.Stanza {
	t.Helper()
	st, err := c.Expect(timeout, func(st *wire.Stanza) bool { return st.Kind == wire.KindMessage && match(st) })
	if err != nil {
		t.Fatalf("%s waiting for a message: %v", c.JID, err)
	}
	return st
}

func withID(id string) func(*wire.Stanza) bool {
	return func(st *wire.Stanza) bool { return st.ID == id }
}

// TestPaging10000 archives 10,000 messages between two local users and
// pages through both archives in both directions: every message exactly
// once, in order; the stanza-id on each delivered message is its id in the
// recipient's archive.
func TestPaging10000(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	const n = 10000
	delivered := make([]string, 0, n)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := a.Send(chat("bob@localhost", "m"+strconv.Itoa(i), strconv.Itoa(i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		st, err := b.Expect(timeout, client.Kind(wire.KindMessage))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if st.ID != "m"+strconv.Itoa(i) {
			t.Fatalf("message %d delivered as %s", i, st.Raw)
		}
		id, cnt := stanzaID(t, st, "bob@localhost")
		if cnt != 1 {
			t.Fatalf("message %d carries %d stanza-ids by bob: %s", i, cnt, st.Raw)
		}
		delivered = append(delivered, id)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	syncWith(t, a)

	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	for _, who := range []struct {
		c   *client.Client
		out bool
	}{{a, true}, {b, false}} {
		c := who.c
		// Forward: the first page, then <after> the last id of each page.
		var got []result
		rsm := "<max>100</max>"
		pages := 0
		for {
			rs, f, e := query(t, c, "", nil, rsm, "")
			if e != nil {
				t.Fatalf("%s forward page %d: %s", c.JID, pages, e.Raw)
			}
			pages++
			got = append(got, rs...)
			if len(rs) > 0 && (f.Set.First.ID != rs[0].ID || f.Set.Last != rs[len(rs)-1].ID) {
				t.Fatalf("fin first/last %s/%s, results %s..%s", f.Set.First.ID, f.Set.Last, rs[0].ID, rs[len(rs)-1].ID)
			}
			if f.Stable != "true" {
				t.Fatalf("fin stable=%q", f.Stable)
			}
			if f.Complete == "true" {
				break
			}
			if len(rs) != 100 || pages > n/100+1 {
				t.Fatalf("incomplete page with %d results", len(rs))
			}
			rsm = "<max>100</max><after>" + f.Set.Last + "</after>"
		}
		checkAll(t, c.JID+" forward", got, want, who.out)
		if !who.out {
			for i, r := range got {
				if r.ID != delivered[i] {
					t.Fatalf("message %d: archive id %s, delivered stanza-id %s", i, r.ID, delivered[i])
				}
			}
		}
		// Backward: the last page (<before/>), then <before> the first id.
		got = nil
		rsm, pages = "<max>100</max><before/>", 0
		for {
			rs, f, e := query(t, c, "", nil, rsm, "")
			if e != nil {
				t.Fatalf("%s backward page %d: %s", c.JID, pages, e.Raw)
			}
			pages++
			got = append(rs, got...)
			if f.Complete == "true" {
				break
			}
			if len(rs) != 100 || pages > n/100+1 {
				t.Fatalf("incomplete page with %d results", len(rs))
			}
			rsm = "<max>100</max><before>" + f.Set.First.ID + "</before>"
		}
		checkAll(t, c.JID+" backward", got, want, who.out)
	}
}

func checkAll(t *testing.T, what string, got []result, want []string, out bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i, r := range got {
		if r.Msg.Body == nil || *r.Msg.Body != want[i] {
			t.Fatalf("%s: result %d is %s, want body %s", what, i, r.Raw, want[i])
		}
		if i > 0 && (r.ID <= got[i-1].ID || r.Stamp.Before(got[i-1].Stamp)) {
			t.Fatalf("%s: result %d (%s, %v) not after %s, %v", what, i, r.ID, r.Stamp, got[i-1].ID, got[i-1].Stamp)
		}
		if out && (r.Msg.From != "alice@localhost/phone" || r.Msg.To != "bob@localhost") {
			t.Fatalf("%s: sent message archived as %s", what, r.Raw)
		}
	}
}

// TestQueries checks the filters, limits and errors on a small archive.
func TestQueries(t *testing.T) {
	e := start(t, func(c *conf.Config) {
		c.Module("mam").(*mam.Config).MaxPage = 10
	})
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	c := online(t, e, "carol", "desk")
	// alice: 0,2,4,… to bob; 1,3,5,… from carol (to alice's full JID).
	var stamps []time.Time
	for i := range 12 {
		if i%2 == 0 {
			_ = a.Send(chat("bob@localhost", "m"+strconv.Itoa(i), strconv.Itoa(i)))
			expectMsg(t, b, withID("m"+strconv.Itoa(i)))
		} else {
			_ = c.Send(chat("alice@localhost/phone", "m"+strconv.Itoa(i), strconv.Itoa(i)))
			expectMsg(t, a, withID("m"+strconv.Itoa(i)))
		}
		stamps = append(stamps, time.Now())
		if i == 5 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	all, f, _ := query(t, a, "", nil, "<max>100</max>", "")
	if len(all) != 10 || f.Complete != "false" || f.Set.Count == nil || *f.Set.Count != 12 || f.Set.First.Index == nil || *f.Set.First.Index != 0 {
		t.Fatalf("max 100 with max-page 10: %d results, fin %+v", len(all), f)
	}
	rest, f, _ := query(t, a, "", nil, "<after>"+all[9].ID+"</after>", "")
	all = append(all, rest...)
	if len(rest) != 2 || f.Complete != "true" || *f.Set.First.Index != 10 {
		t.Fatalf("second page: %d, %+v", len(rest), f)
	}
	if got := bodies(all); !slices.Equal(got, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}) {
		t.Fatalf("archive = %v", got)
	}
	check := func(what string, fields [][2]string, rsm string, want ...string) {
		t.Helper()
		rs, f, e := query(t, a, "", fields, rsm, "")
		if e != nil {
			t.Errorf("%s: %s", what, e.Raw)
			return
		}
		if got := bodies(rs); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v (fin %+v)", what, got, want, f)
		}
	}
	check("with bob", [][2]string{{"with", "bob@localhost"}}, "", "0", "2", "4", "6", "8", "10")
	check("with carol bare", [][2]string{{"with", "carol@localhost"}}, "", "1", "3", "5", "7", "9", "11")
	check("with carol full", [][2]string{{"with", "carol@localhost/desk"}}, "", "1", "3", "5", "7", "9", "11")
	check("with carol other resource", [][2]string{{"with", "carol@localhost/phone"}}, "")
	check("with bob full (sent to the bare JID)", [][2]string{{"with", "bob@localhost/laptop"}}, "")
	check("after-id", [][2]string{{"after-id", all[8].ID}}, "", "9", "10", "11")
	check("before-id", [][2]string{{"before-id", all[3].ID}}, "", "0", "1", "2")
	check("after-id and before-id", [][2]string{{"after-id", all[3].ID}, {"before-id", all[7].ID}}, "", "4", "5", "6")
	check("before-id is not backward paging", [][2]string{{"before-id", all[11].ID}}, "<max>2</max>", "0", "1")
	check("rsm before is", nil, "<max>2</max><before>"+all[11].ID+"</before>", "9", "10")
	check("last page", nil, "<max>3</max><before/>", "9", "10", "11")
	check("with and last page", [][2]string{{"with", "bob@localhost"}}, "<max>2</max><before/>", "8", "10")
	check("ids", [][2]string{{"ids", all[5].ID}}, "", "5")
	check("start", [][2]string{{"start", all[6].Stamp.Add(-time.Millisecond).Format(time.RFC3339Nano)}}, "", "6", "7", "8", "9", "10", "11")
	check("end", [][2]string{{"end", stamps[5].Add(5 * time.Millisecond).UTC().Format(time.RFC3339Nano)}}, "", "0", "1", "2", "3", "4", "5")
	check("index", nil, "<max>2</max><index>4</index>", "4", "5")
	check("max 0", nil, "<max>0</max>")
	rs, f, _ := query(t, a, "", nil, "<max>3</max>", "<flip-page/>")
	if got := bodies(rs); !slices.Equal(got, []string{"2", "1", "0"}) || f.Set.First.ID != all[0].ID || f.Set.Last != all[2].ID {
		t.Errorf("flip-page: %v, fin %+v", got, f)
	}
	// The querying resource only; to the bare JID explicitly works too.
	rs, _, _ = query(t, a, "alice@localhost", nil, "<max>1</max>", "")
	if len(rs) != 1 {
		t.Errorf("query to the own bare JID: %d results", len(rs))
	}

	// Errors.
	queryErr(t, a, [][2]string{{"after-id", "zzzzzzzzzzz"}}, "", "item-not-found")
	queryErr(t, a, nil, "<after>abc</after>", "item-not-found")
	queryErr(t, a, [][2]string{{"ids", all[1].ID}, {"ids", all[2].ID}}, "", "bad-request") // field twice
	// bob's ids are not in alice's archive.
	brs, _, _ := query(t, b, "", nil, "<max>1</max>", "")
	queryErr(t, a, nil, "<before>"+brs[0].ID+"</before>", "item-not-found")
	queryErr(t, a, [][2]string{{"start", "last tuesday"}}, "", "bad-request")
	queryErr(t, a, [][2]string{{"{urn:example}fulltext", "x"}}, "", "feature-not-implemented")
	queryErr(t, a, nil, "<max>many</max>", "bad-request")
	if _, _, e := query(t, a, "bob@localhost", nil, "", ""); e == nil || !client.Contains(e, "<forbidden ") {
		t.Errorf("querying bob's archive: %v", e)
	}

	// Form, metadata, features.
	st, err := a.IQ(timeout, "<iq type='get' id='form'><query xmlns='urn:xmpp:mam:2'/></iq>", "form")
	if err != nil || st.Type != "result" {
		t.Fatalf("form: %v %v", st, err)
	}
	for _, v := range []string{"with", "start", "end", "before-id", "after-id", "ids"} {
		if !client.Contains(st, "var='"+v+"'") {
			t.Errorf("form lacks %s: %s", v, st.Raw)
		}
	}
	st, err = a.IQ(timeout, "<iq type='get' id='meta'><metadata xmlns='urn:xmpp:mam:2'/></iq>", "meta")
	if err != nil {
		t.Fatal(err)
	}
	if !client.Contains(st, "<start id='"+all[0].ID+"' timestamp='") || !client.Contains(st, "<end id='"+all[11].ID+"' timestamp='") {
		t.Errorf("metadata: %s", st.Raw)
	}
	e.AddUser("dave", pw)
	d := e.Login("dave", pw, "x")
	st, _ = d.IQ(timeout, "<iq type='get' id='meta'><metadata xmlns='urn:xmpp:mam:2'/></iq>", "meta")
	if st == nil || st.Type != "result" || !client.Contains(st, "<metadata xmlns='urn:xmpp:mam:2'></metadata>") {
		t.Errorf("metadata of an empty archive: %v", st)
	}
	st, err = a.IQ(timeout, "<iq type='get' id='disco' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "disco")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{mam.NS, mam.NSExtended, mam.NSSID, mam.NSRetract, mam.NSTombstone} {
		if !client.Contains(st, "var='"+f+"'") {
			t.Errorf("account disco lacks %s: %s", f, st.Raw)
		}
	}
}

// TestStanzaIDSpoofing: a stanza-id claiming the recipient's archive is
// removed, whether or not the message is archived; others stay.
func TestStanzaIDSpoofing(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	_ = a.Send("<message type='chat' to='bob@localhost' id='s1'><body>hi</body>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='fake'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='BOB@localhost' id='fake2'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='room@conference.localhost' id='keep'/></message>")
	st := expectMsg(t, b, withID("s1"))
	id, n := stanzaID(t, st, "bob@localhost")
	if n != 1 || id == "fake" || client.Contains(st, "fake") || !client.Contains(st, "id='keep'") {
		t.Fatalf("delivered: %s", st.Raw)
	}
	rs, _, _ := query(t, b, "", nil, "", "")
	if len(rs) != 1 || rs[0].ID != id || strings.Contains(rs[0].Raw, "fake") {
		t.Fatalf("archive: %v; delivered id %s", rs, id)
	}
	// Not archived (a chat state), still stripped.
	_ = a.Send("<message type='chat' to='bob@localhost' id='s2'><composing xmlns='http://jabber.org/protocol/chatstates'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='fake3'/></message>")
	st = expectMsg(t, b, withID("s2"))
	if client.Contains(st, "stanza-id") {
		t.Fatalf("chat state delivered with %s", st.Raw)
	}
	// A stanza-id claiming the sender's own archive is removed too (its
	// other resources and carbons trust it).
	_ = a.Send("<message type='chat' to='bob@localhost' id='s3'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='fake4'/></message>")
	st = expectMsg(t, b, withID("s3"))
	if client.Contains(st, "fake4") {
		t.Fatalf("sender-claimed stanza-id kept: %s", st.Raw)
	}
	// The sender's archive id is not put on the message to the contact.
	if _, n := stanzaID(t, st, "alice@localhost"); n != 0 {
		t.Fatalf("message to the contact carries the sender's archive id: %s", st.Raw)
	}
}

// TestWhatIsArchived: hints, chat states, receipts, JMI, OMEMO, errors.
func TestWhatIsArchived(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	send := []struct {
		id, payload string
		typ         string
		archived    bool
	}{
		{"body", "<body>hello</body>", "chat", true},
		{"nostore", "<body>secret</body><no-store xmlns='urn:xmpp:hints'/>", "chat", false},
		{"noperm", "<body>secret</body><no-permanent-store xmlns='urn:xmpp:hints'/>", "chat", false},
		{"state", "<active xmlns='http://jabber.org/protocol/chatstates'/>", "chat", false},
		{"statestore", "<active xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/>", "chat", true},
		{"receipt", "<received xmlns='urn:xmpp:receipts' id='body'/>", "chat", false},
		{"propose", "<propose xmlns='urn:xmpp:jingle-message:0' id='call1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/>", "chat", true},
		{"proposenohint", "<propose xmlns='urn:xmpp:jingle-message:0' id='call2'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/></propose>", "", true},
		{"omemo", "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='27183'><key rid='31415'>BASE64</key><iv>BASE64</iv></header><payload>BASE64</payload></encrypted>", "chat", true},
		{"headline", "<body>news</body>", "headline", false},
		{"normal", "<body>a normal one</body>", "normal", true},
	}
	for _, m := range send {
		typ := ""
		if m.typ != "" {
			typ = " type='" + m.typ + "'"
		}
		_ = a.Send("<message to='bob@localhost' id='" + m.id + "'" + typ + ">" + m.payload + "</message>")
		st := expectMsg(t, b, withID(m.id))
		if _, n := stanzaID(t, st, "bob@localhost"); (n == 1) != m.archived {
			t.Errorf("%s delivered with %d stanza-ids, archived %v: %s", m.id, n, m.archived, st.Raw)
		}
	}
	// An error message is never archived.
	_ = b.Send("<message to='alice@localhost/phone' type='error' id='err'><body>x</body><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	if st := expectMsg(t, a, withID("err")); client.Contains(st, "stanza-id") {
		t.Errorf("error message stamped: %s", st.Raw)
	}
	var want []string
	for _, m := range send {
		if m.archived {
			want = append(want, m.id)
		}
	}
	for _, c := range []*client.Client{a, b} {
		rs, _, _ := query(t, c, "", nil, "", "")
		var got []string
		for _, r := range rs {
			got = append(got, r.Msg.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s archive holds %v, want %v", c.JID, got, want)
		}
	}
}

// TestPrefs: get and set, never/always lists, the roster default.
func TestPrefs(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	c := online(t, e, "carol", "desk")
	st, err := a.IQ(timeout, "<iq type='get' id='p1'><prefs xmlns='urn:xmpp:mam:2'/></iq>", "p1")
	if err != nil || !client.Contains(st, "<prefs xmlns='urn:xmpp:mam:2' default='always'><always></always><never></never></prefs>") {
		t.Fatalf("default prefs: %v %v", st, err)
	}
	st, err = a.IQ(timeout, "<iq type='set' id='p2'><prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>Carol@localhost</jid></never></prefs></iq>", "p2")
	if err != nil || !client.Contains(st, "<never><jid>carol@localhost</jid></never>") {
		t.Fatalf("set prefs: %v %v", st, err)
	}
	_ = c.Send(chat("alice@localhost", "fromcarol", "not archived"))
	if st := expectMsg(t, a, withID("fromcarol")); client.Contains(st, "stanza-id") {
		t.Errorf("message from a never JID stamped: %s", st.Raw)
	}
	_ = a.Send(chat("carol@localhost", "tocarol", "not archived either"))
	expectMsg(t, c, withID("tocarol"))
	_ = b.Send(chat("alice@localhost", "frombob", "archived"))
	expectMsg(t, a, withID("frombob"))
	rs, _, _ := query(t, a, "", nil, "", "")
	if got := bodies(rs); !slices.Equal(got, []string{"archived"}) {
		t.Errorf("alice's archive with carol never: %v", got)
	}
	// carol's own archive is hers: both messages are in it.
	rs, _, _ = query(t, c, "", nil, "", "")
	if len(rs) != 2 {
		t.Errorf("carol's archive has %d messages, want 2", len(rs))
	}

	// Roster default: only contacts in the roster; always list overrides.
	st, err = a.IQ(timeout, "<iq type='set' id='p3'><prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>carol@localhost/desk</jid></always></prefs></iq>", "p3")
	if err != nil || !client.Contains(st, "default='roster'") || !client.Contains(st, "<always><jid>carol@localhost/desk</jid></always><never></never>") {
		t.Fatalf("set roster prefs: %v %v", st, err)
	}
	if _, err := a.IQ(timeout, "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>", "r1"); err != nil {
		t.Fatal(err)
	}
	e.AddUser("dave", pw)
	d := online(t, e, "dave", "x")
	for _, m := range []struct {
		from *client.Client
		id   string
	}{{b, "contact"}, {d, "stranger"}, {c, "always"}} {
		_ = m.from.Send(chat("alice@localhost", m.id, map[string]string{"contact": "in roster", "stranger": "not in roster", "always": "carol's desk is always"}[m.id]))
		expectMsg(t, a, withID(m.id))
	}
	rs, _, _ = query(t, a, "", [][2]string{{"after-id", rs0(t, a)}}, "", "")
	if got := bodies(rs); !slices.Equal(got, []string{"in roster", "carol's desk is always"}) {
		t.Errorf("roster default archived %v", got)
	}
	if st, _ := a.IQ(timeout, "<iq type='set' id='p4'><prefs xmlns='urn:xmpp:mam:2' default='sometimes'/></iq>", "p4"); st == nil || !client.Contains(st, "<bad-request ") {
		t.Errorf("default='sometimes': %v", st)
	}
	if st, err := a.IQ(timeout, "<iq type='set' id='p5'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>", "p5"); err != nil || !client.Contains(st, "default='never'><always></always>") {
		t.Errorf("set never: %v %v", st, err)
	}
	if st, _ := a.IQ(timeout, "<iq type='get' id='p6' to='bob@localhost'><prefs xmlns='urn:xmpp:mam:2'/></iq>", "p6"); st == nil || !client.Contains(st, "<forbidden ") {
		t.Errorf("reading bob's prefs: %v", st)
	}
}

// rs0 returns the id of "archived", the first message of TestPrefs.
func rs0(t *testing.T, c *client.Client) string {
	t.Helper()
	rs, _, _ := query(t, c, "", nil, "<max>1</max>", "")
	if len(rs) != 1 {
		t.Fatal("empty archive")
	}
	return rs[0].ID
}

// TestRetraction: XEP-0424 (urn:xmpp:message-retract:1) leaves tombstones
// in both local archives, keeps the retraction, and only the sender can
// retract.
func TestRetraction(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	_ = a.Send(chat("bob@localhost", "m1", "wrong recipient"))
	_ = a.Send(chat("bob@localhost", "m2", "keep me"))
	expectMsg(t, b, withID("m2"))
	// bob cannot retract alice's message.
	_ = b.Send("<message type='chat' to='alice@localhost' id='evil'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/><body>/me retracted</body></message>")
	expectMsg(t, a, withID("evil"))
	_ = a.Send("<message type='chat' to='bob@localhost' id='r1'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/>" +
		"<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><body>/me retracted a message</body><store xmlns='urn:xmpp:hints'/></message>")
	expectMsg(t, b, withID("r1"))
	syncWith(t, a)
	for _, c := range []*client.Client{a, b} {
		rs, _, _ := query(t, c, "", nil, "", "")
		if len(rs) != 4 {
			t.Fatalf("%s: %d results, want 4", c.JID, len(rs))
		}
		tomb := rs[0]
		if tomb.Msg.ID != "m1" || tomb.Msg.Body != nil || tomb.Msg.Retracted == nil || tomb.Msg.Retracted.ID != "r1" ||
			tomb.Msg.Retracted.Stamp == "" || strings.Contains(tomb.Raw, "wrong recipient") || tomb.Msg.From != "alice@localhost/phone" {
			t.Errorf("%s: tombstone %s", c.JID, tomb.Raw)
		}
		if rs[1].Msg.Retracted != nil || *rs[1].Msg.Body != "keep me" || rs[2].Msg.ID != "evil" || rs[3].Msg.ID != "r1" {
			t.Errorf("%s: archive after retraction: %v", c.JID, bodies(rs))
		}
	}
	// Gone from storage, not only from query results.
	for _, owner := range []string{"alice@localhost", "bob@localhost"} {
		p, err := e.Srv.Store.Archive().Query(t.Context(), storage.ArchiveQuery{Owner: owner, Max: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			if strings.Contains(string(m.Stanza), "wrong recipient") {
				t.Errorf("%s still stores the retracted content", owner)
			}
		}
	}
}

// TestRetention: messages older than the retention are not shown.
func TestRetention(t *testing.T) {
	e := start(t, func(c *conf.Config) {
		c.Module("mam").(*mam.Config).Retention = time.Hour
	})
	old := time.Now().Add(-2 * time.Hour)
	if err := e.Srv.Store.Archive().Append(t.Context(), []storage.ArchiveMessage{
		{Owner: "alice@localhost", With: "bob@localhost", Stamp: old, Stanza: []byte("<message xmlns='jabber:client'><body>old</body></message>")},
	}); err != nil {
		t.Fatal(err)
	}
	a := online(t, e, "alice", "phone")
	b := online(t, e, "bob", "laptop")
	_ = b.Send(chat("alice@localhost", "new", "new"))
	expectMsg(t, a, withID("new"))
	rs, _, _ := query(t, a, "", nil, "", "")
	if got := bodies(rs); !slices.Equal(got, []string{"new"}) {
		t.Errorf("with retention 1h: %v", got)
	}
	st, _ := a.IQ(timeout, "<iq type='get' id='meta'><metadata xmlns='urn:xmpp:mam:2'/></iq>", "meta")
	if st == nil || !client.Contains(st, "<start id='"+rs[0].ID+"'") {
		t.Errorf("metadata shows expired messages: %v", st)
	}
}

// TestOfflineFlood: item 6. Offline messages are archived, and the flood
// carries the archive's stanza-ids; a session that queries its archive
// before initial presence gets no flood for what it could fetch, only for
// what arrived after its query.
func TestOfflineFlood(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")

	// The classic client: the flood, with the archive ids.
	for i := range 3 {
		_ = a.Send(chat("bob@localhost", "o"+strconv.Itoa(i), "offline "+strconv.Itoa(i)))
	}
	syncWith(t, a)
	b := e.Login("bob", pw, "old")
	_ = b.Send("<presence/>")
	var flood []string
	for i := range 3 {
		st := expectMsg(t, b, withID("o"+strconv.Itoa(i)))
		id, n := stanzaID(t, st, "bob@localhost")
		if n != 1 || !client.Contains(st, "Offline Storage") {
			t.Fatalf("flooded: %s", st.Raw)
		}
		flood = append(flood, id)
	}
	rs, _, _ := query(t, b, "", nil, "", "")
	if len(rs) != 3 {
		t.Fatalf("bob's archive holds %d", len(rs))
	}
	for i, r := range rs {
		if r.ID != flood[i] {
			t.Errorf("offline message %d: flood stanza-id %s, archive id %s", i, flood[i], r.ID)
		}
	}
	_ = b.Close()
	gone(t, e, "bob@localhost")

	// The MAM client: query before presence, no flood for what it fetched.
	for i := range 3 {
		_ = a.Send(chat("bob@localhost", "p"+strconv.Itoa(i), "missed "+strconv.Itoa(i)))
	}
	syncWith(t, a)
	if n, _ := e.Srv.Store.Offline().Count(t.Context(), "bob@localhost"); n != 3 {
		t.Fatalf("offline store holds %d, want 3", n)
	}
	m := e.Login("bob", pw, "modern")
	rs, f, _ := query(t, m, "", [][2]string{{"after-id", flood[2]}}, "<max>2</max>", "")
	if got := bodies(rs); !slices.Equal(got, []string{"missed 0", "missed 1"}) || f.Complete != "false" {
		t.Fatalf("catch-up page 1: %v %+v", got, f)
	}
	rs, f, _ = query(t, m, "", nil, "<max>2</max><after>"+f.Set.Last+"</after>", "")
	if got := bodies(rs); !slices.Equal(got, []string{"missed 2"}) || f.Complete != "true" {
		t.Fatalf("catch-up page 2: %v %+v", got, f)
	}
	// One more arrives after the query and before presence: that one is flooded.
	_ = a.Send(chat("bob@localhost", "late", "after the query"))
	syncWith(t, a)
	_ = m.Send("<presence/>")
	// The flood is sent while the server handles the presence: the answer
	// to a ping sent after it is the marker that the flood is over.
	_ = m.Send("<iq type='get' id='after-flood'><ping xmlns='urn:xmpp:ping'/></iq>")
	var flooded []string
	for {
		st, err := m.Next(timeout)
		if err != nil {
			t.Fatalf("no answer to the ping after the flood: %v", err)
		}
		if st.Kind == wire.KindIQ && st.ID == "after-flood" {
			break
		}
		if st.Kind == wire.KindMessage {
			flooded = append(flooded, st.ID)
		}
	}
	if !slices.Equal(flooded, []string{"late"}) {
		t.Fatalf("flooded after the MAM catch-up: %v, want only [late]", flooded)
	}
	// Without XEP-0198 a flooded message is deleted once written to the
	// link: the writer may send it and the ping's answer in one write and
	// delete it just after, so wait for the deletion (bounded).
	for deadline := time.Now().Add(timeout); ; {
		n, _ := e.Srv.Store.Offline().Count(t.Context(), "bob@localhost")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offline store still holds %d", n)
		}
		runtime.Gosched()
	}

	// A query with a 'with' filter does not count: the flood comes.
	_ = m.Close()
	gone(t, e, "bob@localhost")
	_ = a.Send(chat("bob@localhost", "q0", "filtered"))
	syncWith(t, a)
	f2 := e.Login("bob", pw, "filter")
	query(t, f2, "", [][2]string{{"with", "carol@localhost"}}, "", "")
	_ = f2.Send("<presence/>")
	if st := expectMsg(t, f2, client.Kind(wire.KindMessage)); st.ID != "q0" {
		t.Errorf("after a filtered query: %s", st.Raw)
	}
}

// gone waits until bare has no available resource left.
func gone(t *testing.T, e *servertest.Env, bare string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); len(e.Srv.Router.Available(bare)) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still has available resources", bare)
		}
	}
}

// TestMessageToSelf is archived once.
func TestMessageToSelf(t *testing.T) {
	e := start(t, nil)
	a := online(t, e, "alice", "phone")
	_ = a.Send(chat("alice@localhost", "self", "note to self"))
	st := expectMsg(t, a, withID("self"))
	if _, n := stanzaID(t, st, "alice@localhost"); n != 1 {
		t.Errorf("message to self delivered as %s", st.Raw)
	}
	rs, _, _ := query(t, a, "", [][2]string{{"with", "alice@localhost"}}, "", "")
	if len(rs) != 1 {
		t.Errorf("message to self archived %d times", len(rs))
	}
}
