package contracts

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The roles of the node-scoped NATS identities that connect with these
// options (libs/natsauth mints them; its Role values are these).
const (
	RoleCNI     = "cni"     // cni-entry on one node
	RoleAdapter = "adapter" // a vpp/ovs adapter on one node
)

// InboxPrefix is the reply inbox prefix of the identity role@node:
// _INBOX_<role>.<node token>. Every identity has its own and may read only
// that one (nobody may subscribe to _INBOX.>), so node A cannot read node
// B's replies. The role comes first so that no prefix is a prefix of
// another's. This is the one formula: libs/natsauth's permissions use it.
func InboxPrefix(role, node string) string {
	return "_INBOX_" + role + "." + NodeToken(node)
}

// TLSFiles name PEM files for a NATS client: CAFile verifies the server
// (empty: the system roots), CertFile and KeyFile are an optional client
// certificate. The JSON names are cni-entry's NetConf nats.tls.
type TLSFiles struct {
	CAFile   string `json:"caFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// ConnectOptions say how to reach NATS.
type ConnectOptions struct {
	URL             string        // nats://host:port[,nats://...]
	CredentialsFile string        // optional .creds file
	Timeout         time.Duration // dial timeout; also bounds the whole connect
	Name            string        // connection name shown by the server
	// InboxPrefix replaces _INBOX for replies (see InboxPrefix); a
	// secured server lets each identity read only its own.
	InboxPrefix string
	TLS         TLSFiles
}

// options are the nats.go options every usrsp connection shares.
func (o ConnectOptions) options() []nats.Option {
	opts := []nats.Option{nats.Name(o.Name)}
	if o.Timeout > 0 {
		opts = append(opts, nats.Timeout(o.Timeout))
	}
	if o.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredentialsFile))
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	if o.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.TLS.CAFile))
	}
	if o.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(o.TLS.CertFile, o.TLS.KeyFile))
	}
	return opts
}

// Connect dials NATS once, without retrying in the background: a short-lived
// caller (cni-entry) wants a fast, clear failure. Failure is
// CodeTryAgainLater, because NATS being down is transient for the runtime.
// A Client on the connection fails a request the server denies at once,
// with CodeInvalidConfig, instead of waiting for its timeout.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	w := &deniedWatch{waiters: map[*deniedWaiter]struct{}{}}
	opts := append(o.options(), nats.NoReconnect(), nats.ErrorHandler(w.handle),
		nats.ClosedHandler(func(nc *nats.Conn) { watches.Delete(nc) }))
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, Errorf(CodeTryAgainLater, "cannot connect to NATS at %s: %v", o.URL, err)
	}
	watches.Store(nc, w)
	return nc, nil
}

// ConnectService dials NATS for a long-running daemon (an adapter): unlike
// Connect it keeps retrying the first connect and reconnects forever, since
// NATS restarting must not take the node's adapter down. extra adds
// options, e.g. disconnect/reconnect and error handlers for the daemon's logs.
func ConnectService(o ConnectOptions, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(o.options(),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
	)
	nc, err := nats.Connect(o.URL, append(opts, extra...)...)
	if err != nil {
		return nil, Errorf(CodeTryAgainLater, "cannot connect to NATS at %s: %v", o.URL, err)
	}
	return nc, nil
}

// nats.go reports a permission violation only asynchronously (the error
// handler) and the request then just times out. Connect records the
// violations per connection so that Client.call can fail the request they
// concern at once, with the server's reason.
var watches sync.Map // *nats.Conn → *deniedWatch

type deniedWatch struct {
	mu      sync.Mutex
	waiters map[*deniedWaiter]struct{}
}

type deniedWaiter struct {
	quoted []string // `"subject"` and `Subscription to "<inbox prefix>`
	cancel context.CancelCauseFunc
}

// permissionDenied is the cancel cause of a request the server denied.
type permissionDenied struct{ err error }

func (p permissionDenied) Error() string { return p.err.Error() }

func (w *deniedWatch) handle(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	msg := err.Error()
	w.mu.Lock()
	defer w.mu.Unlock()
	for d := range w.waiters {
		for _, q := range d.quoted {
			if strings.Contains(msg, q) {
				d.cancel(permissionDenied{err})
				break
			}
		}
	}
}

// watchDenied returns ctx cancelled when the server denies publishing on
// subject or subscribing to nc's reply inbox; stop ends the watch.
func watchDenied(ctx context.Context, nc *nats.Conn, subject string) (context.Context, func()) {
	v, ok := watches.Load(nc)
	if !ok {
		return ctx, func() {}
	}
	w := v.(*deniedWatch)
	inbox := nc.Opts.InboxPrefix
	if inbox == "" {
		inbox = strings.TrimSuffix(nats.InboxPrefix, ".")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	d := &deniedWaiter{quoted: []string{`"` + subject + `"`, `Subscription to "` + inbox + `.`}, cancel: cancel}
	w.mu.Lock()
	w.waiters[d] = struct{}{}
	w.mu.Unlock()
	return ctx, func() {
		w.mu.Lock()
		delete(w.waiters, d)
		w.mu.Unlock()
		cancel(nil)
	}
}

// deniedCause is the server's permission violation that ended ctx, or nil.
func deniedCause(ctx context.Context) error {
	var pd permissionDenied
	if errors.As(context.Cause(ctx), &pd) {
		return pd.err
	}
	return nil
}
