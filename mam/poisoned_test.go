package mam_test

import (
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestPoisonedArchiveCopyLeftOut: an archived stanza that is not
// namespace-well-formed standing alone (stored by a version whose reader
// checked prefixes only near the top) is left out of query results, so it
// cannot end the querying client's stream; the messages around it come.
func TestPoisonedArchiveCopyLeftOut(t *testing.T) {
	e := start(t, nil)
	arch := e.Srv.Store.Archive()
	msg := func(body, inner string) storage.ArchiveMessage {
		return storage.ArchiveMessage{Owner: "bob@localhost", With: "alice@localhost/phone",
			Stanza: []byte("<message xmlns='jabber:client' from='alice@localhost/phone' to='bob@localhost' type='chat'><body>" + body + "</body>" + inner + "</message>")}
	}
	if err := arch.Append(t.Context(), []storage.ArchiveMessage{
		msg("before", ""), msg("poison", "<x xmlns='urn:a'><evil:z/></x>"), msg("after", ""),
	}); err != nil {
		t.Fatal(err)
	}
	b := online(t, e, "bob", "laptop")
	res, f, errSt := query(t, b, "", nil, "", "")
	if errSt != nil {
		t.Fatalf("query: %s", errSt.Raw)
	}
	var bodies []string
	for _, r := range res {
		if r.Msg.Body != nil {
			bodies = append(bodies, *r.Msg.Body)
		}
	}
	if len(bodies) != 2 || bodies[0] != "before" || bodies[1] != "after" || f == nil {
		t.Fatalf("results %q, want [before after]", bodies)
	}
	syncWith(t, b) // the stream is still up
}
