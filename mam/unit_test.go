package mam

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
	"github.com/xmppd/xmppd/wire"
)

func parse(t testing.TB, s string) *wire.Stanza {
	t.Helper()
	st, err := wire.ParseElement([]byte(s), wire.NSClient)
	if err != nil {
		t.Fatalf("ParseElement(%s): %v", s, err)
	}
	return st
}

func TestIDs(t *testing.T) {
	for _, seq := range []int64{1, 31, 32, 1700000000123456, 1<<55 - 1, 1<<62 + 5} {
		id := FormatID(seq)
		if len(id) != idLen {
			t.Errorf("FormatID(%d) = %q", seq, id)
		}
		if seq < 1<<55 {
			got, ok := ParseID(id)
			if !ok || got != seq {
				t.Errorf("ParseID(FormatID(%d)) = %d, %v", seq, got, ok)
			}
		}
	}
	if FormatID(1700000000123456) >= FormatID(1700000000123457) || FormatID(9) >= FormatID(10) {
		t.Error("ids do not sort like seqs")
	}
	for _, bad := range []string{"", "00000000000", "0000000000", "000000000000", "0000000000I", "0000000000u", "0000000000-", "zzzzzzzzzzz0"} {
		if seq, ok := ParseID(bad); ok {
			t.Errorf("ParseID(%q) = %d, ok", bad, seq)
		}
	}
}

func TestClassify(t *testing.T) {
	const omemo = "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>"
	for _, tc := range []struct {
		name, msg string
		archive   bool
		retract   string
	}{
		{"chat body", "<message type='chat'><body>hi</body></message>", true, ""},
		{"normal body", "<message><body>hi</body></message>", true, ""},
		{"empty body", "<message type='chat'><body/></message>", true, ""},
		{"omemo", "<message type='chat'>" + omemo + "</message>", true, ""},
		{"omemo 2", "<message type='chat'><encrypted xmlns='urn:xmpp:omemo:2'/></message>", true, ""},
		{"openpgp", "<message type='chat'><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp></message>", true, ""},
		{"jmi propose", "<message type='chat'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>", true, ""},
		{"jmi accept", "<message><accept xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>", true, ""},
		{"jmi finish", "<message><finish xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>", true, ""},
		{"jmi unknown", "<message><other xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>", false, ""},
		{"retraction", "<message type='chat' id='r1'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/><fallback xmlns='urn:xmpp:fallback:0'/><body>/me retracted</body></message>", true, "m1"},
		{"retraction no body", "<message type='chat'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/></message>", true, "m1"},
		{"chat state", "<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", false, ""},
		{"chat state stored", "<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/></message>", true, ""},
		{"receipt", "<message><received xmlns='urn:xmpp:receipts' id='x'/></message>", false, ""},
		{"marker", "<message type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>", false, ""},
		{"no-store", "<message type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>", false, ""},
		{"no-permanent-store", "<message type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>", false, ""},
		{"no-store beats store", "<message type='chat'><body>x</body><store xmlns='urn:xmpp:hints'/><no-store xmlns='urn:xmpp:hints'/></message>", false, ""},
		{"no-store retraction still retracts", "<message type='chat'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/><no-store xmlns='urn:xmpp:hints'/></message>", false, "m1"},
		{"error", "<message type='error'><body>x</body><store xmlns='urn:xmpp:hints'/></message>", false, ""},
		{"groupchat", "<message type='groupchat'><body>x</body></message>", false, ""},
		{"headline", "<message type='headline'><body>x</body></message>", false, ""},
		{"headline stored", "<message type='headline'><body>x</body><store xmlns='urn:xmpp:hints'/></message>", true, ""},
		{"headline retraction", "<message type='headline'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/></message>", false, ""},
		{"body elsewhere", "<message><x xmlns='urn:x'><body>x</body></x><body xmlns='urn:other'/></message>", false, ""},
		{"empty", "<message/>", false, ""},
	} {
		c := classify(parse(t, tc.msg))
		if c.archive != tc.archive || c.retract != tc.retract {
			t.Errorf("%s: archive %v retract %q; want %v %q", tc.name, c.archive, c.retract, tc.archive, tc.retract)
		}
	}
	if c := classify(parse(t, "<message><origin-id xmlns='urn:xmpp:sid:0' id='o1'/><body/></message>")); c.originID != "o1" {
		t.Errorf("origin-id = %q", c.originID)
	}
}

func TestStripStanzaIDs(t *testing.T) {
	st := parse(t, "<message><body>x</body>"+
		"<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.example' id='a'/>"+
		"<stanza-id xmlns='urn:xmpp:sid:0' by='Juliet@Capulet.example' id='b'/>"+
		"<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.example/balcony' id='c'/>"+
		"<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example' id='d'/>"+
		"<stanza-id by='juliet@capulet.example' id='e'/></message>")
	stripStanzaIDs(st, "juliet@capulet.example")
	want := "<message><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example' id='d'/><stanza-id by='juliet@capulet.example' id='e'/></message>"
	if string(st.Raw) != want {
		t.Errorf("stripped:\n%s\nwant\n%s", st.Raw, want)
	}
	plain := parse(t, "<message><body>x</body></message>")
	raw := plain.Raw
	stripStanzaIDs(plain, "juliet@capulet.example")
	if &plain.Raw[0] != &raw[0] {
		t.Error("a message without stanza-ids was copied")
	}
}

func TestTombstone(t *testing.T) {
	orig := storage.ArchiveMessage{
		OriginID: "o&1",
		Stanza:   []byte("<message xmlns='jabber:client' from='romeo@montague.example/orchard' to='juliet@capulet.example' type='chat' id='m1'><body>secret</body><origin-id xmlns='urn:xmpp:sid:0' id='o&amp;1'/></message>"),
	}
	got := string(Tombstone(orig, "r1", time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)))
	want := "<message xmlns='jabber:client' from='romeo@montague.example/orchard' to='juliet@capulet.example' type='chat' id='m1'>" +
		"<retracted xmlns='urn:xmpp:message-retract:1' id='r1' stamp='2025-01-02T03:04:05.006Z'/><origin-id xmlns='urn:xmpp:sid:0' id='o&amp;1'/></message>"
	if got != want {
		t.Errorf("Tombstone =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "secret") {
		t.Error("tombstone keeps the content")
	}
}

func TestListed(t *testing.T) {
	list := []string{"romeo@montague.example", "juliet@capulet.example/balcony"}
	for _, tc := range []struct {
		j    string
		want bool
	}{
		{"romeo@montague.example", true},
		{"romeo@montague.example/orchard", true},
		{"juliet@capulet.example/balcony", true},
		{"juliet@capulet.example", false},
		{"juliet@capulet.example/chamber", false},
		{"montague.example", false},
	} {
		if got := listed(list, jid.MustParse(tc.j)); got != tc.want {
			t.Errorf("listed(%s) = %v", tc.j, got)
		}
	}
}

func TestParseQueryErrors(t *testing.T) {
	m := &Module{cfg: *DefaultConfig()}
	m.cfg.MaxPage = 20
	form := func(fields string) string {
		return "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f'><x xmlns='jabber:x:data' type='submit'>" +
			"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" + fields + "</x></query></iq>"
	}
	id := FormatID(1700000000000000)
	for _, tc := range []struct {
		iq, cond string
	}{
		{form("<field var='start'><value>yesterday</value></field>"), "bad-request"},
		{form("<field var='with'><value>@@</value></field>"), "jid-malformed"},
		{form("<field var='with'><value>a@b</value><value>c@d</value></field>"), "bad-request"},
		{form("<field var='{urn:x}search'><value>x</value></field>"), "feature-not-implemented"},
		{form("<field var='after-id'><value>not-an-id</value></field>"), "item-not-found"},
		{form("<field var='ids'><value>" + id + "</value><value>nope</value></field>"), "item-not-found"},
		{form("<field var='start'><value>2020-01-01T00:00:00Z</value></field><field var='start'><value>2020-01-01T00:00:00Z</value></field>"), "bad-request"},
		{form("<field var='include-groupchat'><value>maybe</value></field>"), "bad-request"},
		{"<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></query></iq>", "bad-request"},
		{"<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set></query></iq>", "bad-request"},
		{"<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set></query></iq>", "bad-request"},
		{"<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after>zz</after></set></query></iq>", "item-not-found"},
		{"<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after/></set></query></iq>", "bad-request"},
		{"<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><index>3</index><before/></set></query></iq>", "bad-request"},
		{"<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' node='urn:xmpp:microblog:0'/></iq>", "feature-not-implemented"},
	} {
		_, err := m.parseQuery(parse(t, tc.iq), "juliet@capulet.example")
		qe, ok := err.(*queryError)
		if !ok || qe.cond != tc.cond {
			t.Errorf("parseQuery(%s) = %v, want %s", tc.iq, err, tc.cond)
		}
	}

	// What a good query becomes.
	r, err := m.parseQuery(parse(t, "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='with'><value>Romeo@Montague.example/Orchard</value></field>"+
		"<field var='start'><value>2010-06-07T00:00:00Z</value></field><field var='end'><value>2010-07-07T13:23:54.5+02:00</value></field>"+
		"<field var='after-id'><value>"+FormatID(100)+"</value></field><field var='include-groupchat'><value>false</value></field></x>"+
		"<set xmlns='http://jabber.org/protocol/rsm'><max>500</max><after>"+FormatID(50)+"</after></set><flip-page/></query></iq>"), "juliet@capulet.example")
	if err != nil {
		t.Fatal(err)
	}
	q := r.q
	if r.queryID != "f" || !r.flip || !r.filtered || q.With != "romeo@montague.example/Orchard" || q.Max != 20 || q.After != 100 ||
		q.PageAfter != 50 || q.FromEnd || !q.Start.Equal(time.Date(2010, 6, 7, 0, 0, 0, 0, time.UTC)) ||
		!q.End.Equal(time.Date(2010, 7, 7, 11, 23, 54, 5e8, time.UTC)) {
		t.Errorf("parsed %+v (request %+v)", q, r)
	}
	r, err = m.parseQuery(parse(t, "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>7</max><before/></set></query></iq>"), "j@c")
	if err != nil || !r.q.FromEnd || r.q.Before != 0 || r.q.PageBefore != 0 || r.q.Max != 7 || r.filtered {
		t.Errorf("last page: %+v, %v", r, err)
	}
}

func TestSweep(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.Accounts().Create(ctx, storage.Account{JID: "a@x"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	msgs := []storage.ArchiveMessage{
		{Owner: "a@x", With: "b@y", Stamp: now.Add(-3 * time.Hour), Stanza: []byte("<message/>")},
		{Owner: "a@x", With: "b@y", Stamp: now.Add(-2 * time.Hour), Stanza: []byte("<message/>")},
		{Owner: "a@x", With: "b@y", Stamp: now.Add(-time.Minute), Stanza: []byte("<message/>")},
	}
	if err := s.Archive().Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := router.New(log, func(d string) bool { return d == "x" }, nil)
	cfg := DefaultConfig()
	cfg.Retention = time.Hour
	m := New(r, s, log, cfg) // starts a sweep of its own, racing with this one
	n, err := m.Sweep(ctx)
	if err != nil || n > 2 {
		t.Fatalf("Sweep = %d, %v; want at most 2", n, err)
	}
	p, err := s.Archive().Query(ctx, storage.ArchiveQuery{Owner: "a@x", Max: 10})
	if err != nil || len(p.Messages) != 1 || p.Messages[0].Seq != msgs[2].Seq {
		t.Errorf("after Sweep: %+v, %v", p.Messages, err)
	}
	if m.retentionStart().After(now.Add(-time.Hour + time.Minute)) {
		t.Errorf("retention start %v", m.retentionStart())
	}
	cfg.Retention = 0
	if n, err := New(router.New(log, nil, nil), s, log, cfg).Sweep(ctx); n != 0 || err != nil {
		t.Errorf("Sweep without retention = %d, %v", n, err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	c.Default = "sometimes"
	if c.Validate() == nil {
		t.Error("default=sometimes accepted")
	}
	c = DefaultConfig()
	c.Retention = time.Millisecond
	if c.Validate() == nil {
		t.Error("retention=1ms accepted")
	}
}
