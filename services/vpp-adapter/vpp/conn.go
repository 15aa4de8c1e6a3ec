package vpp

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/core"
)

// IncompatibleError says the running VPP does not speak the binary API the
// adapter was built for.
type IncompatibleError struct {
	Messages []string // name_crc of every message VPP does not know
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("VPP binary API is incompatible: this adapter is built for VPP %s, and the running VPP "+
		"does not know %d of its messages (%s); run VPP %s or an adapter built for your VPP",
		BuiltFor, len(e.Messages), strings.Join(e.Messages, ", "), BuiltFor)
}

// CheckCompatibility checks every message the adapter uses against VPP.
func CheckCompatibility(conn *core.Connection) error {
	ch, err := conn.NewAPIChannel()
	if err != nil {
		return fmt.Errorf("open VPP API channel: %w", err)
	}
	defer ch.Close()
	err = ch.CheckCompatiblity(Messages()...)
	var ce *api.CompatibilityError
	if errors.As(err, &ce) {
		msgs := append([]string(nil), ce.IncompatibleMessages...)
		sort.Strings(msgs)
		return &IncompatibleError{Messages: msgs}
	}
	return err
}

// Session is one live VPP connection handed to the adapter.
type Session struct {
	Conn   api.Connection
	Client *Client
}

// Loop keeps one connection to VPP: it dials with exponential backoff,
// checks compatibility, hands the session to Up, probes VPP with control
// pings, and on failure calls Down and dials again.
type Loop struct {
	// NewAdapter returns a fresh VPP transport for each attempt (e.g. a
	// socketclient for the API socket).
	NewAdapter func() adapter.VppAPI
	// Up is called after every successful connect (first start and every
	// reconnect, e.g. after VPP restarted); it replays the desired state.
	Up func(context.Context, Session)
	// Down is called when the connection is lost or cannot be made.
	Down func(error)
	// MinBackoff and MaxBackoff bound the wait between attempts.
	MinBackoff, MaxBackoff time.Duration
	// ProbeInterval and ProbeTimeout drive the liveness probe.
	ProbeInterval, ProbeTimeout time.Duration
}

// Run connects and reconnects until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	backoff := l.MinBackoff
	for ctx.Err() == nil {
		err := l.session(ctx, &backoff)
		if ctx.Err() != nil {
			return
		}
		l.Down(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, l.MaxBackoff)
	}
}

// session runs one connection until it fails; it resets backoff once the
// connection is up and compatible.
func (l *Loop) session(ctx context.Context, backoff *time.Duration) error {
	conn, err := core.Connect(l.NewAdapter())
	if err != nil {
		return fmt.Errorf("connect to VPP: %w", err)
	}
	defer conn.Disconnect()
	if err := CheckCompatibility(conn); err != nil {
		return err
	}
	*backoff = l.MinBackoff
	l.Up(ctx, Session{Conn: conn, Client: NewClient(conn)})
	ping := memclnt.NewServiceClient(conn)
	t := time.NewTicker(l.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, l.ProbeTimeout)
		_, err := ping.ControlPing(pctx, &memclnt.ControlPing{})
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("VPP stopped answering control_ping: %w", err)
		}
	}
}
