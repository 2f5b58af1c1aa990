package client

import (
	"context"

	"github.com/xmppd/xmppd/wire"
)

// PreAuth opens a secured stream that does not authenticate, sends each
// iq in turn and returns the answer to each (XEP-0077 registration: the
// form, a submission).
func PreAuth(ctx context.Context, cfg Config, iqs ...string) ([]*wire.Stanza, error) {
	c := &Client{done: make(chan struct{})}
	defer c.closeConn()
	if err := c.connect(ctx, cfg); err != nil {
		return nil, err
	}
	if err := c.secure(ctx, cfg); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	}
	out := make([]*wire.Stanza, 0, len(iqs))
	for _, iq := range iqs {
		if err := c.Send(iq); err != nil {
			return out, err
		}
		st, err := c.rd.Next()
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	_ = c.Send("</stream:stream>")
	return out, nil
}
