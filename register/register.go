// Package register implements XEP-0077 In-Band Registration: creating an
// account before authentication (off by default, rate-limited per IP),
// changing the password and removing the account after it.
package register

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/dataform"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/wire"
)

// NS is the XEP-0077 namespace.
const NS = "jabber:iq:register"

// Options configure registration.
type Options struct {
	Enabled             bool // creating accounts in band
	PerIPPerHour        int  // 0: unlimited
	MinPasswordLength   int
	AllowPasswordChange bool
	AllowRemoval        bool
	Iterations          int // SCRAM iterations for new keys
}

// Module answers jabber:iq:register.
type Module struct {
	r        *router.Router
	accounts storage.Accounts
	opts     Options
	log      *slog.Logger

	mu     sync.Mutex
	window time.Time
	perIP  map[string]int
}

// New registers the module on r.
func New(r *router.Router, accounts storage.Accounts, log *slog.Logger, opts Options) *Module {
	if opts.Iterations < 4096 {
		opts.Iterations = 4096
	}
	m := &Module{r: r, accounts: accounts, opts: opts, log: log, perIP: map[string]int{}}
	r.AddFeature(router.ToServer, NS)
	r.HandleIQ("get", NS, router.ToServer|router.ToBare, m.getAuthed)
	r.HandleIQ("set", NS, router.ToServer|router.ToBare, m.setAuthed)
	return m
}

// Enabled reports whether accounts may be created in band.
func (m *Module) Enabled() bool { return m.opts.Enabled }

type query struct {
	Username *string   `xml:"query>username"`
	Password *string   `xml:"query>password"`
	Remove   *struct{} `xml:"query>remove"`
	// Form is the XEP-0077 §6 data form, the other way to give them.
	Form *dataform.Form `xml:"query>x"`
}

// Form types of the registration forms (XEP-0077 §6, §3.3).
const (
	formRegister       = NS
	formChangePassword = NS + ":changepassword"
)

// registrationForm is the form a get offers beside the legacy fields.
var registrationForm = string(dataform.NewForm(dataform.TypeForm, formRegister,
	dataform.Field{Var: "username", Type: dataform.TextSingle, Label: "Username", Required: true},
	dataform.Field{Var: "password", Type: dataform.TextPrivate, Label: "Password", Required: true},
).AppendXML(nil))

// errMalformed is a set encoding/xml cannot read.
var errMalformed = errors.New("register: malformed query")

// fromForm fills the legacy fields of q from its data form, when it has
// one and no legacy fields: a submitted form of one of the formTypes. The
// error is a *dataform.Error with the stanza error to answer with.
func (q *query) fromForm(formTypes ...string) error {
	f := q.Form
	if f == nil || q.Username != nil || q.Password != nil {
		return nil
	}
	if f.Type != dataform.TypeSubmit || !slices.Contains(formTypes, f.FormType()) {
		return &dataform.Error{Condition: dataform.BadRequest, Reason: "a submitted " + formTypes[0] + " form is expected"}
	}
	for _, v := range []struct {
		name string
		dst  **string
	}{{"username", &q.Username}, {"password", &q.Password}} {
		if !f.Has(v.name) {
			continue
		}
		s, err := f.Text(v.name)
		if err != nil {
			return err
		}
		*v.dst = &s
	}
	return nil
}

// decode reads a set: errMalformed, or a *dataform.Error for a form the
// dataform package or fromForm refused.
func decode(st *wire.Stanza, q *query, formTypes ...string) error {
	if err := st.Decode(q); err != nil {
		var fe *dataform.Error
		if errors.As(err, &fe) {
			return fe
		}
		return errMalformed
	}
	return q.fromForm(formTypes...)
}

func iqReply(st *wire.Stanza, from string, payload string) []byte {
	b := []byte("<iq type='result' id='")
	b = wire.AppendEscapedAttr(b, st.ID)
	b = append(b, '\'')
	if from != "" {
		b = append(b, " from='"...)
		b = wire.AppendEscapedAttr(b, from)
		b = append(b, '\'')
	}
	if payload == "" {
		return append(b, "/>"...)
	}
	return append(append(append(b, '>'), payload...), "</iq>"...)
}

func errReply(st *wire.Stanza, typ, cond, text string) []byte {
	e := *st
	e.From, e.To = "", ""
	return wire.ErrorReply(&e, typ, cond, text)
}

// PreAuth answers a registration iq on a stream that has not authenticated
// (the c2s Registrar interface).
func (m *Module) PreAuth(ctx context.Context, st *wire.Stanza, domain string, ip net.IP, secure bool) []byte {
	if !m.opts.Enabled {
		return errReply(st, "cancel", "service-unavailable", "")
	}
	if !secure {
		return errReply(st, "auth", "not-authorized", "Registration requires an encrypted stream")
	}
	switch st.Type {
	case "get":
		return iqReply(st, "", "<query xmlns='"+NS+"'><instructions>Choose a username and password.</instructions><username/><password/>"+registrationForm+"</query>")
	case "set":
	default:
		return errReply(st, "modify", "bad-request", "")
	}
	var q query
	err := decode(st, &q, formRegister)
	if fe := (*dataform.Error)(nil); errors.As(err, &fe) {
		return errReply(st, "modify", fe.Condition, fe.Text())
	}
	if err != nil || q.Username == nil || q.Password == nil {
		return errReply(st, "modify", "not-acceptable", "Username and password are required")
	}
	if q.Remove != nil {
		return errReply(st, "auth", "not-authorized", "")
	}
	j, err := jid.New(strings.TrimSpace(*q.Username), domain, "")
	if err != nil || j.Localpart() == "" {
		return errReply(st, "modify", "jid-malformed", "The username is not valid")
	}
	if reason := m.weak(*q.Password); reason != "" {
		return errReply(st, "modify", "not-acceptable", reason)
	}
	if !m.allow(ip) {
		return errReply(st, "wait", "resource-constraint", "Too many registrations from your address; try later")
	}
	keys, err := sasl.NewKeys(*q.Password, m.opts.Iterations)
	if err != nil {
		return errReply(st, "modify", "not-acceptable", "The password is not valid")
	}
	err = m.accounts.Create(ctx, storage.Account{JID: j.String(), Keys: keys, Created: time.Now().UTC()})
	switch {
	case errors.Is(err, storage.ErrExists):
		return errReply(st, "cancel", "conflict", "The username is taken")
	case err != nil:
		m.log.Error("creating account failed", "jid", j.String(), "err", err)
		return errReply(st, "wait", "internal-server-error", "")
	}
	m.log.Info("account registered in band", "jid", j.String(), "ip", ip.String())
	return iqReply(st, "", "")
}

func (m *Module) weak(pw string) string {
	if utf8.RuneCountInString(pw) < m.opts.MinPasswordLength {
		return "The password is too short"
	}
	return ""
}

func (m *Module) allow(ip net.IP) bool {
	if m.opts.PerIPPerHour <= 0 {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.window) >= time.Hour {
		m.window = time.Now()
		clear(m.perIP)
	}
	k := ip.String()
	if m.perIP[k] >= m.opts.PerIPPerHour {
		return false
	}
	m.perIP[k]++
	return true
}

// own reports whether an iq is the account's own (to the server, or to its
// own bare JID); anything else is forbidden.
func own(c *router.Context) bool {
	if c.To.Localpart() != "" && !c.To.Equal(c.From.Bare()) {
		c.Error("auth", "forbidden", "")
		return false
	}
	return true
}

func (m *Module) getAuthed(c *router.Context) {
	if !own(c) {
		return
	}
	b := []byte("<query xmlns='" + NS + "'><registered/><username>")
	b = wire.AppendEscapedText(b, c.From.Localpart())
	c.Reply(append(b, "</username><password/></query>"...))
}

// Kicker is implemented by sessions that can be ended with a stream error.
type Kicker interface{ Kick(cond, text string) }

func (m *Module) setAuthed(c *router.Context) {
	if !own(c) {
		return
	}
	var q query
	if err := decode(c.Stanza, &q, formChangePassword, formRegister); err != nil {
		if fe := (*dataform.Error)(nil); errors.As(err, &fe) {
			c.Error("modify", fe.Condition, fe.Text())
		} else {
			c.Error("modify", "bad-request", "")
		}
		return
	}
	owner := c.From.Bare().String()
	if q.Remove != nil {
		if !m.opts.AllowRemoval {
			c.Error("cancel", "not-allowed", "")
			return
		}
		if err := m.accounts.Delete(c, owner); err != nil {
			c.Error("wait", "internal-server-error", "")
			return
		}
		m.log.Info("account removed in band", "jid", owner)
		c.Reply(nil)
		for _, s := range m.r.Resources(owner) {
			if k, ok := s.(Kicker); ok {
				k.Kick("not-authorized", "The account was removed")
			}
		}
		return
	}
	if q.Username == nil || q.Password == nil {
		c.Error("modify", "bad-request", "")
		return
	}
	if *q.Username != c.From.Localpart() {
		c.Error("modify", "bad-request", "The username does not match the account")
		return
	}
	if !m.opts.AllowPasswordChange {
		c.Error("cancel", "not-allowed", "")
		return
	}
	if reason := m.weak(*q.Password); reason != "" {
		c.Error("modify", "not-acceptable", reason)
		return
	}
	keys, err := sasl.NewKeys(*q.Password, m.opts.Iterations)
	if err != nil {
		c.Error("modify", "not-acceptable", "The password is not valid")
		return
	}
	if err := m.accounts.SetKeys(c, owner, keys); err != nil {
		c.Error("wait", "internal-server-error", "")
		return
	}
	m.log.Info("password changed in band", "jid", owner)
	c.Reply(nil)
}
