package vppapply

import (
	"context"
	"fmt"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
)

// Watch keeps the pod's interfaces applied while VPP in the pod restarts:
// it dials, runs apply, then probes VPP with control pings; when the
// connection breaks (VPP restarted) it dials again, with backoff, and
// re-applies. It returns when ctx ends.
type Watch struct {
	// Dial connects to VPP; the returned func closes the connection.
	Dial func() (api.Connection, func(), error)
	// Apply applies the interfaces over one connection.
	Apply func(context.Context, api.Connection) error
	// OnError is told every failed dial, apply or probe (the loop goes on).
	OnError func(error)

	MinBackoff, MaxBackoff time.Duration
	ProbeInterval          time.Duration
	ProbeTimeout           time.Duration
}

// Run loops until ctx ends.
func (w *Watch) Run(ctx context.Context) {
	backoff := w.MinBackoff
	for ctx.Err() == nil {
		healthy, err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		w.OnError(err)
		if healthy {
			backoff = w.MinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !healthy {
			backoff = min(backoff*2, w.MaxBackoff)
		}
	}
}

// session runs one connection; healthy is true once apply succeeded on it.
func (w *Watch) session(ctx context.Context) (healthy bool, err error) {
	conn, closeConn, err := w.Dial()
	if err != nil {
		return false, fmt.Errorf("connect to VPP: %w", err)
	}
	defer closeConn()
	if err := w.Apply(ctx, conn); err != nil {
		return false, err
	}
	ping := memclnt.NewServiceClient(conn)
	t := time.NewTicker(w.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, w.ProbeTimeout)
		_, err := ping.ControlPing(pctx, &memclnt.ControlPing{})
		cancel()
		if err != nil && ctx.Err() == nil {
			return true, fmt.Errorf("VPP stopped answering control_ping (restarted?): %w", err)
		}
	}
}
