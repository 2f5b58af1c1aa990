package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/wire"
)

// Service handles every stanza addressed to a service domain (a subdomain
// such as upload.DOMAIN, push.DOMAIN, conference.DOMAIN) or to JIDs on it.
type Service func(c *Context)

type services struct {
	smu sync.RWMutex
	svc map[string]Service

	pmu     sync.Mutex
	pending map[string]chan *wire.Stanza
}

// RegisterService routes every stanza whose 'to' is on domain to s. Service
// domains count as local.
func (r *Router) RegisterService(domain string, s Service) {
	r.smu.Lock()
	defer r.smu.Unlock()
	if r.svc == nil {
		r.svc = make(map[string]Service)
	}
	r.svc[domain] = s
}

func (r *Router) service(domain string) Service {
	r.smu.RLock()
	defer r.smu.RUnlock()
	return r.svc[domain]
}

// ErrNoAnswer is returned by Query when the context ends before an answer.
var ErrNoAnswer = errors.New("router: no answer to the query")

// Query sends an iq from a server or service JID and waits for the answer
// (result or error), which it returns. payload is the iq's child.
func (r *Router) Query(ctx context.Context, from, to jid.JID, typ string, payload []byte) (*wire.Stanza, error) {
	var idb [9]byte
	_, _ = rand.Read(idb[:])
	id := "q-" + hex.EncodeToString(idb[:])
	ch := make(chan *wire.Stanza, 1)
	r.pmu.Lock()
	if r.pending == nil {
		r.pending = make(map[string]chan *wire.Stanza)
	}
	r.pending[id] = ch
	r.pmu.Unlock()
	defer func() {
		r.pmu.Lock()
		delete(r.pending, id)
		r.pmu.Unlock()
	}()
	b := make([]byte, 0, 96+len(payload))
	b = append(b, "<iq type='"+typ+"' id='"+id+"'"...)
	b = appendAddrs(b, from.String(), to.String())
	b = append(b, '>')
	b = append(b, payload...)
	b = append(b, "</iq>"...)
	st, err := wire.ParseElement(b, wire.NSClient)
	if err != nil {
		return nil, err
	}
	r.Route(&Context{Context: ctx, Router: r, Stanza: st, From: from, To: to})
	select {
	case ans := <-ch:
		return ans, nil
	case <-ctx.Done():
		return nil, ErrNoAnswer
	}
}

// answer hands an iq result or error to a waiting Query; false if none waits.
func (r *Router) answer(st *wire.Stanza) bool {
	r.pmu.Lock()
	ch, ok := r.pending[st.ID]
	if ok {
		delete(r.pending, st.ID)
	}
	r.pmu.Unlock()
	if ok {
		ch <- st
	}
	return ok
}

// waiting reports whether a Query waits for an answer with this id.
func (r *Router) waiting(id string) bool {
	if len(id) < 2 || id[:2] != "q-" {
		return false
	}
	r.pmu.Lock()
	defer r.pmu.Unlock()
	_, ok := r.pending[id]
	return ok
}
