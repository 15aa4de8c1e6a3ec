package vpp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"
)

// IncompatibleError says the running VPP does not speak the binary API
// this package (and the adapter or tool using it) was built for.
type IncompatibleError struct {
	// Found is the running VPP's version as show_version reports it, or
	// "unknown" when VPP cannot tell it in a way this package understands.
	Found    string
	Messages []string // name_crc of every message VPP does not know
}

func (e *IncompatibleError) Error() string {
	found, yours := "VPP "+e.Found, "VPP "+e.Found
	if e.Found == "" || e.Found == UnknownVersion {
		found, yours = "a VPP of unknown version (show_version failed)", "your VPP"
	}
	return fmt.Sprintf("VPP binary API is incompatible: this adapter is built for VPP %s and found %s, "+
		"which does not know %d of its messages (%s); run VPP %s or an adapter built for %s",
		BuiltFor, found, len(e.Messages), strings.Join(e.Messages, ", "), BuiltFor, yours)
}

// UnknownVersion is IncompatibleError.Found when show_version does not work.
const UnknownVersion = "unknown"

// versionTimeout bounds the show_version that names an incompatible VPP.
const versionTimeout = 5 * time.Second

// CheckCompatibility checks every message of Messages against VPP.
func CheckCompatibility(conn *core.Connection) error {
	return CheckMessages(conn, Messages())
}

// CheckMessages checks msgs against VPP by name and CRC. When some do not
// match it also asks VPP for its version, so the error names the release
// found next to the one expected.
func CheckMessages(conn *core.Connection, msgs []api.Message) error {
	ch, err := conn.NewAPIChannel()
	if err != nil {
		return fmt.Errorf("open VPP API channel: %w", err)
	}
	defer ch.Close()
	err = ch.CheckCompatiblity(msgs...)
	var ce *api.CompatibilityError
	if errors.As(err, &ce) {
		msgs := append([]string(nil), ce.IncompatibleMessages...)
		sort.Strings(msgs)
		return &IncompatibleError{Found: runningVersion(conn, msgs), Messages: msgs}
	}
	return err
}

// runningVersion asks an incompatible VPP for its version. show_version has
// kept its CRC for years, so it usually still works; if it is one of the
// unknown messages, asking would only wait for a reply govpp cannot decode.
func runningVersion(conn *core.Connection, incompatible []string) string {
	for _, m := range []api.Message{&vpe.ShowVersion{}, &vpe.ShowVersionReply{}} {
		if slices.Contains(incompatible, m.GetMessageName()+"_"+m.GetCrcString()) {
			return UnknownVersion
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()
	r, err := vpe.NewServiceClient(conn).ShowVersion(ctx, &vpe.ShowVersion{})
	if err != nil || r.Retval != 0 || r.Version == "" {
		return UnknownVersion
	}
	return r.Version
}

// Session is one live VPP connection handed to Loop's Up and Setup.
type Session struct {
	Conn   api.Connection
	Client *Client
}

// Loop keeps one connection to VPP: it dials with exponential backoff,
// checks compatibility, hands the session to Up and Setup, probes VPP with
// control pings, and on failure calls Down and dials again.
type Loop struct {
	// NewAdapter returns a fresh VPP transport for each attempt (e.g. a
	// socketclient for the API socket).
	NewAdapter func() adapter.VppAPI
	// Messages are checked on every connect; nil means Messages(). A
	// program that uses a few operations names just those, so a VPP that
	// lacks the others still serves it.
	Messages []api.Message
	// Up, if set, is called after every successful connect (first start
	// and every reconnect, e.g. after VPP restarted); it replays the
	// desired state.
	Up func(context.Context, Session)
	// Setup, if set, is called after Up on the same session; an error ends
	// the session like a failed probe (Down, backoff, dial again), so a
	// program that must configure VPP retries until it has.
	Setup func(context.Context, Session) error
	// Down is called when the connection is lost or cannot be made, or
	// Setup fails.
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
// connection is up, compatible and set up.
func (l *Loop) session(ctx context.Context, backoff *time.Duration) error {
	conn, err := core.Connect(l.NewAdapter())
	if err != nil {
		return fmt.Errorf("connect to VPP: %w", err)
	}
	defer conn.Disconnect()
	msgs := l.Messages
	if msgs == nil {
		msgs = Messages()
	}
	if err := CheckMessages(conn, msgs); err != nil {
		return err
	}
	s := Session{Conn: conn, Client: NewClient(conn)}
	if l.Up != nil {
		l.Up(ctx, s)
	}
	if l.Setup != nil {
		if err := l.Setup(ctx, s); err != nil {
			return err
		}
	}
	*backoff = l.MinBackoff
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
