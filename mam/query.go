package mam

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// maxIDs bounds the 'ids' field of one query.
const maxIDs = 1000

// handleSet serves queries and preference changes; handleGet the query
// form, the archive metadata and the preferences. Only the owner may use
// an archive.
func (m *Module) handleSet(c *router.Context) {
	if !m.own(c) {
		return
	}
	switch c.Stanza.PayloadName {
	case "query":
		m.query(c)
	case "prefs":
		m.setPrefs(c)
	default:
		c.Error("cancel", "feature-not-implemented", "")
	}
}

func (m *Module) handleGet(c *router.Context) {
	if !m.own(c) {
		return
	}
	switch c.Stanza.PayloadName {
	case "query":
		c.Reply([]byte(queryForm))
	case "metadata":
		m.metadata(c)
	case "prefs":
		m.getPrefs(c)
	default:
		c.Error("cancel", "feature-not-implemented", "")
	}
}

func (m *Module) own(c *router.Context) bool {
	if !c.To.Bare().Equal(c.From.Bare()) {
		c.Error("cancel", "forbidden", "Only the owner may use an archive")
		return false
	}
	return true
}

// queryForm lists the fields a query accepts (XEP-0313 §Retrieving form fields).
const queryForm = "<query xmlns='" + NS + "'><x xmlns='" + nsData + "' type='form'>" +
	"<field type='hidden' var='FORM_TYPE'><value>" + NS + "</value></field>" +
	"<field type='jid-single' var='with'/>" +
	"<field type='text-single' var='start'/>" +
	"<field type='text-single' var='end'/>" +
	"<field type='text-single' var='before-id'/>" +
	"<field type='text-single' var='after-id'/>" +
	"<field type='list-multi' var='ids'><validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='xs:string'><open/></validate></field>" +
	"<field type='boolean' var='include-groupchat'/>" +
	"</x></query>"

// queryIQ is an archive query as encoding/xml reads it.
type queryIQ struct {
	Query struct {
		QueryID string         `xml:"queryid,attr"`
		Node    string         `xml:"node,attr"`
		X       *dataform.Form `xml:"jabber:x:data x"`
		Set     *struct {
			Max    *string `xml:"max"`
			After  *string `xml:"after"`
			Before *string `xml:"before"`
			Index  *string `xml:"index"`
		} `xml:"http://jabber.org/protocol/rsm set"`
		Flip *struct{} `xml:"urn:xmpp:mam:2 flip-page"`
	} `xml:"urn:xmpp:mam:2 query"`
}

// queryError is a stanza error to answer a query with.
type queryError struct{ typ, cond, text string }

func (e *queryError) Error() string { return e.cond + ": " + e.text }

func badRequest(text string) *queryError { return &queryError{"modify", "bad-request", text} }

var errNotFound = &queryError{"cancel", "item-not-found", "No such message in the archive"}

// request is a parsed query.
type request struct {
	queryID string
	flip    bool
	q       storage.ArchiveQuery
	// filtered: 'with' or 'ids' narrow the query (the item-6 rule ignores it).
	filtered bool
}

// parseQuery turns a query iq into a storage query for owner.
func (m *Module) parseQuery(st *wire.Stanza, owner string) (*request, error) {
	var v queryIQ
	if err := st.Decode(&v); err != nil {
		var fe *dataform.Error
		if errors.As(err, &fe) {
			return nil, &queryError{"modify", fe.Condition, fe.Text()}
		}
		return nil, badRequest("Malformed query")
	}
	q := v.Query
	if q.Node != "" {
		return nil, &queryError{"cancel", "feature-not-implemented", "No pubsub archives here"}
	}
	r := &request{queryID: q.QueryID, flip: q.Flip != nil}
	r.q = storage.ArchiveQuery{Owner: owner, Max: m.cfg.MaxPage, CountLimit: m.cfg.CountLimit}
	id := func(s string) (int64, error) {
		seq, ok := ParseID(s)
		if !ok {
			return 0, errNotFound
		}
		return seq, nil
	}
	var formAfter, formBefore int64
	if q.X != nil {
		// dataform refused vars given twice, typed fields with values of
		// the wrong kind and forms over its limits.
		for i := range q.X.Fields {
			f := &q.X.Fields[i]
			if f.Var != "ids" && len(f.Values) > 1 {
				return nil, badRequest("Field " + f.Var + " takes one value")
			}
			val := ""
			if len(f.Values) == 1 {
				val = f.Values[0]
			}
			var err error
			switch f.Var {
			case dataform.FormTypeVar:
				if val != NS {
					return nil, badRequest("FORM_TYPE must be " + NS)
				}
			case "":
				// A fixed field: text for people, no value to read.
			case "with":
				j, perr := f.JID()
				if perr != nil {
					return nil, &queryError{"modify", "jid-malformed", "Bad JID in with"}
				}
				if val == "" {
					continue
				}
				r.q.With = j.String()
				r.filtered = true
			case "start", "end":
				if val == "" {
					continue
				}
				t, perr := time.Parse(time.RFC3339Nano, val)
				if perr != nil {
					return nil, badRequest("Field " + f.Var + " is not an XEP-0082 DateTime")
				}
				if f.Var == "start" {
					r.q.Start = t
				} else {
					r.q.End = t
				}
			case "after-id":
				if val != "" {
					formAfter, err = id(val)
				}
			case "before-id":
				if val != "" {
					formBefore, err = id(val)
				}
			case "ids":
				if len(f.Values) > maxIDs {
					return nil, &queryError{"modify", "not-acceptable", "At most " + strconv.Itoa(maxIDs) + " ids per query"}
				}
				r.q.IDs = []int64{}
				for _, s := range f.Values {
					seq, err := id(s)
					if err != nil {
						return nil, err
					}
					r.q.IDs = append(r.q.IDs, seq)
				}
				r.filtered = true
			case "include-groupchat":
				// Groupchat messages are never in user archives here:
				// either value gives the same results.
				if _, perr := f.Bool(); perr != nil {
					return nil, badRequest("include-groupchat is a boolean")
				}
			default:
				return nil, &queryError{"cancel", "feature-not-implemented", "Unknown field " + f.Var}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	var rsmAfter, rsmBefore int64
	if s := q.Set; s != nil {
		if s.Max != nil {
			n, err := strconv.Atoi(*s.Max)
			if err != nil || n < 0 {
				return nil, badRequest("RSM max must be a non-negative integer")
			}
			r.q.Max = min(n, m.cfg.MaxPage)
		}
		var err error
		if s.After != nil {
			if *s.After == "" {
				return nil, badRequest("Empty RSM after")
			}
			if rsmAfter, err = id(*s.After); err != nil {
				return nil, err
			}
		}
		if s.Before != nil {
			r.q.FromEnd = true // empty: the last page
			if *s.Before != "" {
				if rsmBefore, err = id(*s.Before); err != nil {
					return nil, err
				}
			}
		}
		if s.Index != nil {
			n, err := strconv.Atoi(*s.Index)
			if err != nil || n < 0 || s.Before != nil || s.After != nil {
				return nil, badRequest("RSM index must be a non-negative integer, without after or before")
			}
			r.q.Offset = n
		}
	}
	// The form's ids bound the result set; RSM's are cursors within it.
	r.q.After, r.q.Before = formAfter, formBefore
	r.q.PageAfter, r.q.PageBefore = rsmAfter, rsmBefore
	if start := m.retentionStart(); !start.IsZero() && (r.q.Start.IsZero() || r.q.Start.Before(start)) {
		r.q.Start = start
	}
	return r, nil
}

// query answers an archive query: the results as messages to the querying
// resource, then the iq result with <fin/>.
func (m *Module) query(c *router.Context) {
	owner := c.From.Bare().String()
	r, err := m.parseQuery(c.Stanza, owner)
	if err != nil {
		m.queryFailed(c, err)
		return
	}
	ctx := c.Context
	m.maybeSweep()

	// The item-6 rule: before initial presence, remember what was in the
	// archive when the query began.
	if s := c.Origin; s != nil && s.Presence() == nil && !r.filtered {
		newest, err := m.archive.Query(ctx, storage.ArchiveQuery{Owner: owner, Max: 1, FromEnd: true})
		if err != nil {
			m.queryFailed(c, err)
			return
		}
		if len(newest.Messages) == 1 {
			m.noteQueryBeforePresence(s, owner, newest.Messages[0].Seq)
		}
	}

	page, err := m.archive.Query(ctx, r.q)
	if err != nil {
		m.queryFailed(c, err)
		return
	}

	send := func(raw []byte) bool {
		if c.Origin != nil && c.Origin.JID().Equal(c.From) {
			return c.Origin.Send(raw)
		}
		m.r.DeliverRaw(c.From, raw)
		return true
	}
	results := m.results(ctx, c, owner, r, &page)
	if r.flip {
		slices.Reverse(results)
	}
	for _, raw := range results {
		if raw == nil {
			continue // withheld
		}
		if !send(raw) {
			c.Error("wait", "resource-constraint", "The results did not fit in the session's queue")
			return
		}
	}
	c.Reply(fin(page))
}

// buffered is implemented by sessions that tell how many bytes the server
// holds for them (c2s.Session).
type buffered interface{ Buffered() int }

// results renders the result messages of page, in archive order (nil for
// a withheld message), and cuts the page to the byte bound: it keeps the
// results nearest the cursor (the first ones going forward, the last ones
// for a FromEnd query) while they total at most m.pageBytes, and at least
// one. A cut page is not complete: the client pages on from its <last/>
// (or <first/> backward) and gets the rest, as with any page that returned
// fewer than max (XEP-0059 §2.5). The bound shrinks when the querying
// session already holds more than half of its buffer (twice the bound), so
// that queries sent one after another without waiting stay within it.
func (m *Module) results(ctx context.Context, c *router.Context, owner string, r *request, page *storage.ArchivePage) [][]byte {
	limit := m.pageBytes
	if b, ok := c.Origin.(buffered); ok && c.Origin.JID().Equal(c.From) {
		limit = min(limit, 2*m.pageBytes-b.Buffered())
	}
	msgs := page.Messages
	out := make([][]byte, len(msgs))
	to := c.From.String()
	buf := make([]byte, 0, 1024)
	size, kept := 0, 0
	for k := range msgs {
		i := k
		if r.q.FromEnd {
			i = len(msgs) - 1 - k
		}
		if m.withheld(ctx, owner, msgs[i]) {
			kept++
			continue
		}
		buf = m.appendResult(buf[:0], to, owner, r.queryID, msgs[i])
		if size > 0 && size+len(buf) > limit {
			break
		}
		size += len(buf)
		out[i] = slices.Clone(buf)
		kept++
	}
	if cut := len(msgs) - kept; cut > 0 {
		page.Complete = false
		if r.q.FromEnd {
			out, page.Messages = out[cut:], msgs[cut:]
			if page.Index >= 0 {
				page.Index += cut
			}
		} else {
			out, page.Messages = out[:kept], msgs[:kept]
		}
	}
	return out
}

func (m *Module) queryFailed(c *router.Context, err error) {
	var qe *queryError
	switch {
	case errors.As(err, &qe):
		c.Error(qe.typ, qe.cond, qe.text)
	case errors.Is(err, storage.ErrNotFound):
		c.Error(errNotFound.typ, errNotFound.cond, errNotFound.text)
	default:
		m.log.Error("archive query failed", "owner", c.From.Bare().String(), "err", err)
		c.Error("wait", "internal-server-error", "")
	}
}

// appendResult appends one result message for the querying resource.
func (m *Module) appendResult(b []byte, to, owner, queryID string, msg storage.ArchiveMessage) []byte {
	id := FormatID(msg.Seq)
	b = append(b, "<message to='"...)
	b = wire.AppendEscapedAttr(b, to)
	b = append(b, "' from='"...)
	b = wire.AppendEscapedAttr(b, owner)
	b = append(b, "' id='mam"...)
	b = strconv.AppendUint(b, m.resultID.Add(1), 36)
	b = append(b, "'><result xmlns='"+NS+"'"...)
	if queryID != "" {
		b = append(b, " queryid='"...)
		b = wire.AppendEscapedAttr(b, queryID)
		b = append(b, '\'')
	}
	b = append(b, " id='"...)
	b = append(b, id...)
	b = append(b, "'><forwarded xmlns='"+nsForward+"'><delay xmlns='"+nsDelay+"' stamp='"...)
	b = append(b, stamp(msg.Stamp)...)
	b = append(b, "'/>"...)
	b = append(b, msg.Stanza...)
	return append(b, "</forwarded></result></message>"...)
}

// fin is the iq result payload closing a query.
func fin(p storage.ArchivePage) []byte {
	b := make([]byte, 0, 256)
	b = append(b, "<fin xmlns='"+NS+"' complete='"...)
	b = strconv.AppendBool(b, p.Complete)
	b = append(b, "' stable='true'><set xmlns='"+nsRSM+"'>"...)
	if n := len(p.Messages); n > 0 {
		b = append(b, "<first"...)
		if p.Index >= 0 {
			b = append(b, " index='"...)
			b = strconv.AppendInt(b, int64(p.Index), 10)
			b = append(b, '\'')
		}
		b = append(b, '>')
		b = append(b, FormatID(p.Messages[0].Seq)...)
		b = append(b, "</first><last>"...)
		b = append(b, FormatID(p.Messages[n-1].Seq)...)
		b = append(b, "</last>"...)
	}
	if p.Count >= 0 {
		b = append(b, "<count>"...)
		b = strconv.AppendInt(b, int64(p.Count), 10)
		b = append(b, "</count>"...)
	}
	return append(b, "</set></fin>"...)
}

// metadata answers the XEP-0313 §Archive metadata query: the first and
// last message of the archive (within the retention).
func (m *Module) metadata(c *router.Context) {
	owner := c.From.Bare().String()
	start := m.retentionStart()
	first, err := m.archive.Query(c, storage.ArchiveQuery{Owner: owner, Start: start, Max: 1})
	if err != nil {
		m.queryFailed(c, err)
		return
	}
	last, err := m.archive.Query(c, storage.ArchiveQuery{Owner: owner, Start: start, Max: 1, FromEnd: true})
	if err != nil {
		m.queryFailed(c, err)
		return
	}
	b := []byte("<metadata xmlns='" + NS + "'>")
	if len(first.Messages) == 1 && len(last.Messages) == 1 {
		for _, e := range []struct {
			name string
			msg  storage.ArchiveMessage
		}{{"start", first.Messages[0]}, {"end", last.Messages[0]}} {
			b = append(b, '<')
			b = append(b, e.name...)
			b = append(b, " id='"...)
			b = append(b, FormatID(e.msg.Seq)...)
			b = append(b, "' timestamp='"...)
			b = append(b, stamp(e.msg.Stamp)...)
			b = append(b, "'/>"...)
		}
	}
	c.Reply(append(b, "</metadata>"...))
}

// prefsIQ is an XEP-0441 preferences element.
type prefsIQ struct {
	Prefs struct {
		Default *string `xml:"default,attr"`
		Always  *struct {
			JIDs []string `xml:"jid"`
		} `xml:"always"`
		Never *struct {
			JIDs []string `xml:"jid"`
		} `xml:"never"`
	} `xml:"urn:xmpp:mam:2 prefs"`
}

// maxPrefsJIDs bounds each preference list.
const maxPrefsJIDs = 1000

func (m *Module) getPrefs(c *router.Context) {
	p, err := m.archive.Prefs(c, c.From.Bare().String())
	if err != nil {
		m.queryFailed(c, err)
		return
	}
	c.Reply(m.prefsXML(p))
}

func (m *Module) prefsXML(p storage.ArchivePrefs) []byte {
	def := p.Default
	if def == "" {
		def = m.cfg.Default
	}
	b := []byte("<prefs xmlns='" + NS + "' default='" + def + "'>")
	for _, l := range []struct {
		name string
		jids []string
	}{{"always", p.Always}, {"never", p.Never}} {
		b = append(b, '<')
		b = append(b, l.name...)
		b = append(b, '>')
		for _, j := range l.jids {
			b = append(b, "<jid>"...)
			b = wire.AppendEscapedText(b, j)
			b = append(b, "</jid>"...)
		}
		b = append(b, "</"...)
		b = append(b, l.name...)
		b = append(b, '>')
	}
	return append(b, "</prefs>"...)
}

func (m *Module) setPrefs(c *router.Context) {
	owner := c.From.Bare().String()
	var v prefsIQ
	if err := c.Stanza.Decode(&v); err != nil {
		c.Error("modify", "bad-request", "Malformed prefs")
		return
	}
	old, err := m.archive.Prefs(c, owner)
	if err != nil {
		m.queryFailed(c, err)
		return
	}
	p := storage.ArchivePrefs{Default: old.Default}
	if d := v.Prefs.Default; d != nil {
		switch *d {
		case "always", "never", "roster":
			p.Default = *d
		default:
			c.Error("modify", "bad-request", "default must be always, never or roster")
			return
		}
	}
	for _, l := range []struct {
		in *struct {
			JIDs []string `xml:"jid"`
		}
		out *[]string
	}{{v.Prefs.Always, &p.Always}, {v.Prefs.Never, &p.Never}} {
		if l.in == nil {
			continue
		}
		if len(l.in.JIDs) > maxPrefsJIDs {
			c.Error("modify", "not-acceptable", "At most "+strconv.Itoa(maxPrefsJIDs)+" JIDs per list")
			return
		}
		for _, s := range l.in.JIDs {
			j, err := jid.Parse(s)
			if err != nil {
				c.Error("modify", "jid-malformed", "Bad JID in a preference list")
				return
			}
			*l.out = append(*l.out, j.String())
		}
	}
	err = m.archive.SetPrefs(context.WithoutCancel(c.Context), owner, p)
	m.prefs.forget(owner)
	if err != nil {
		m.queryFailed(c, err)
		return
	}
	p, err = m.archive.Prefs(c, owner)
	if err != nil {
		m.queryFailed(c, err)
		return
	}
	c.Reply(m.prefsXML(p))
}

// SetPageBytes bounds the results of one query to about n bytes (at least
// one result): the server sets a quarter of limits session-buffer, so a
// page of messages near max-stanza-size never ends the session that asked
// for it. Call it before the server starts serving.
func (m *Module) SetPageBytes(n int) {
	if n > 0 {
		m.pageBytes = n
	}
}
