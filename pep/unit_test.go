package pep

import (
	"fmt"
	"slices"
	"testing"

	"github.com/beevik/etree"

	"github.com/xmppd/xmppd/storage"
)

func query(t *testing.T, x string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(x); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

// The two examples of XEP-0115 §5.2 and §5.3.
func TestVerificationString(t *testing.T) {
	tests := []struct {
		name, query, ver string
		ok               bool
	}{
		{"simple", `<query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
</query>`, "QgayPKawpkPSDYmwT/WM94uAlu0=", true},
		{"complex", `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>`, "q07IKJEyjvHSyhy//CH0CxmKi8w=", true},
		{"form without hidden FORM_TYPE is ignored", `<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>urn:x</value></field><field var='a'><value>b</value></field></x>
</query>`, "QgayPKawpkPSDYmwT/WM94uAlu0=", true},
		{"duplicate feature", `<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
</query>`, "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"duplicate identity", `<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
</query>`, "", false},
		{"separator in a feature", `<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='client' name='x' type='pc'/>
  <feature var='a&lt;b'/>
</query>`, "", false},
		{"wrong ver", `<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/muc'/>
</query>`, "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := readDiscoInfo(query(t, tt.query))
			if got := d.verify(caps{Hash: "sha-1", Ver: tt.ver}); got != tt.ok {
				t.Errorf("verify = %v, want %v (S = %q)", got, tt.ok, d.verificationString())
			}
		})
	}
	d := readDiscoInfo(query(t, tests[0].query))
	if d.verify(caps{Hash: "md5", Ver: tests[0].ver}) {
		t.Error("an unknown hash verified")
	}
}

func TestCapsCacheBounded(t *testing.T) {
	c := newCapsCache(3)
	for i := range 5 {
		c.putLocked(fmt.Sprint(i), newCapsEntry(nil))
	}
	if c.Len() != 3 || c.getLocked("0") != nil || c.getLocked("4") == nil {
		t.Fatalf("cache holds %d entries", c.Len())
	}
	c.getLocked("2") // used: stays
	c.putLocked("5", newCapsEntry(nil))
	if c.getLocked("2") == nil || c.getLocked("3") != nil {
		t.Fatal("least recently used entry was not the one dropped")
	}
	e := newCapsEntry([]string{"urn:a+notify", "urn:b", "+notify", "urn:c+notify"})
	if got := e.notifyNodes(newCapsEntry([]string{"urn:c+notify"})); !slices.Equal(got, []string{"urn:a"}) {
		t.Fatalf("notifyNodes = %q", got)
	}
}

func TestPreconditions(t *testing.T) {
	const limit = 100
	cfg := defaultConfig()
	tests := []struct {
		field  string
		values []string
		want   bool
	}{
		{fAccessModel, []string{"presence"}, true},
		{fAccessModel, []string{"open"}, false},
		{fPersistItems, []string{"1"}, true},
		{fPersistItems, []string{"true"}, true},
		{fPersistItems, []string{"false"}, false},
		{fPersistItems, []string{"yes"}, false},
		{fMaxItems, []string{"1"}, true},
		{fMaxItems, []string{"max"}, false},
		{fMaxItems, []string{"1000"}, false}, // beyond the limit
		{fSendLast, []string{"on_sub_and_presence"}, true},
		{"pubsub#unknown", []string{"x"}, false},
		{fAccessModel, []string{"open", "presence"}, false},
	}
	for _, tt := range tests {
		if got := cfg.meets(tt.field, tt.values, limit); got != tt.want {
			t.Errorf("meets(%s=%q) = %v, want %v", tt.field, tt.values, got, tt.want)
		}
	}
	cfg.MaxItems = 0 // max
	if !cfg.meets(fMaxItems, []string{"100"}, limit) || !cfg.meets(fMaxItems, []string{"max"}, limit) || cfg.meets(fMaxItems, []string{"99"}, limit) {
		t.Error("'max' is not the limit")
	}
	// Stored configurations round-trip.
	cfg.AccessModel, cfg.RosterGroups, cfg.Title = AccessRoster, []string{"A", "B"}, "t"
	if back := configFromMap(cfg.toMap()); !slices.Equal(back.RosterGroups, cfg.RosterGroups) || back.AccessModel != cfg.AccessModel ||
		back.MaxItems != 0 || back.Title != "t" || back.SendLast != cfg.SendLast {
		t.Errorf("round trip: %+v", back)
	}
}

func TestLegacyBookmarks(t *testing.T) {
	l, ok := parseLegacy([]byte(`<storage xmlns='storage:bookmarks'>
  <conference name='Council of Oberon' autojoin='1' jid='council@conference.underhill.org'><nick>Puck</nick><password>pw</password></conference>
  <conference jid='not a jid@@'/>
  <url name='Complete Works' url='http://the-tech.mit.edu/Shakespeare/'/>
</storage>`))
	if !ok || len(l.confs) != 1 || len(l.others) != 1 {
		t.Fatalf("parsed %+v, %v", l, ok)
	}
	b := l.confs[0]
	if b.jid != "council@conference.underhill.org" || b.name != "Council of Oberon" || !b.autojoin || b.nick != "Puck" || b.password != "pw" {
		t.Fatalf("conference = %+v", b)
	}
	back, ok := parseLegacy(l.xml())
	if !ok || !sameSet(back.confs, l.confs) || string(back.others[0]) != string(l.others[0]) {
		t.Fatalf("round trip: %s", l.xml())
	}
	if _, ok := parseLegacy([]byte("<other xmlns='x'/>")); ok {
		t.Fatal("no <storage/> parsed")
	}
	v1, ok := fromV1WithID(t, "council@conference.underhill.org", b.v1Payload())
	if !ok || !v1.same(&b) {
		t.Fatalf(":1 round trip: %s", b.v1Payload())
	}
}

func fromV1WithID(t *testing.T, id string, payload []byte) (bookmark, bool) {
	t.Helper()
	return fromV1(storageItem(id, payload))
}

func TestStandalonePayload(t *testing.T) {
	root := query(t, `<iq xmlns='jabber:client' xmlns:p='urn:p'><pubsub xmlns='http://jabber.org/protocol/pubsub'><item><entry><p:x p:a='1'/><y xmlns='urn:y'/></entry></item></pubsub></iq>`)
	entry := root.FindElement("//entry")
	got := string(standalone(entry))
	want := `<entry xmlns='http://jabber.org/protocol/pubsub' xmlns:p='urn:p'><p:x p:a='1'/><y xmlns='urn:y'/></entry>`
	if got != want {
		t.Fatalf("standalone = %s\nwant %s", got, want)
	}
}

func storageItem(id string, payload []byte) storage.PubSubItem {
	return storage.PubSubItem{ID: id, Payload: payload}
}
