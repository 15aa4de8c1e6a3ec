package contracts

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultTimeout bounds one request when the caller sets no deadline.
const DefaultTimeout = 5 * time.Second

// ConnectOptions say how to reach NATS.
type ConnectOptions struct {
	URL             string        // nats://host:port[,nats://...]
	CredentialsFile string        // optional .creds file
	Timeout         time.Duration // dial timeout; also bounds the whole connect
	Name            string        // connection name shown by the server
}

// Connect dials NATS once, without retrying in the background: a short-lived
// caller (cni-entry) wants a fast, clear failure. Failure is
// CodeTryAgainLater, because NATS being down is transient for the runtime.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.Timeout),
		nats.NoReconnect(),
	}
	if o.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredentialsFile))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, Errorf(CodeTryAgainLater, "cannot connect to NATS at %s: %v", o.URL, err)
	}
	return nc, nil
}

// ConnectService dials NATS for a long-running daemon (an adapter): unlike
// Connect it keeps retrying the first connect and reconnects forever, since
// NATS restarting must not take the node's adapter down. extra adds
// options, e.g. disconnect/reconnect handlers for the daemon's logs.
func ConnectService(o ConnectOptions, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
	}
	if o.Timeout > 0 {
		opts = append(opts, nats.Timeout(o.Timeout))
	}
	if o.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredentialsFile))
	}
	nc, err := nats.Connect(o.URL, append(opts, extra...)...)
	if err != nil {
		return nil, Errorf(CodeTryAgainLater, "cannot connect to NATS at %s: %v", o.URL, err)
	}
	return nc, nil
}

// Client is the typed client of one node's adapters.
type Client struct {
	nc      *nats.Conn
	node    string
	timeout time.Duration
}

// NewClient returns a client for the adapters of node. timeout bounds each
// request unless the context has an earlier deadline (0: DefaultTimeout).
func NewClient(nc *nats.Conn, node string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{nc: nc, node: node, timeout: timeout}
}

// Attach creates an attachment on engine e.
func (c *Client) Attach(ctx context.Context, e Engine, r *AttachRequest) (*AttachResponse, error) {
	var out AttachResponse
	return &out, c.call(ctx, e, OpAttach, r, &out)
}

// Detach removes an attachment; an unknown one is success.
func (c *Client) Detach(ctx context.Context, e Engine, r *DetachRequest) (*DetachResponse, error) {
	var out DetachResponse
	return &out, c.call(ctx, e, OpDetach, r, &out)
}

// Check verifies an attachment.
func (c *Client) Check(ctx context.Context, e Engine, r *CheckRequest) (*CheckResponse, error) {
	var out CheckResponse
	return &out, c.call(ctx, e, OpCheck, r, &out)
}

// List lists attachments.
func (c *Client) List(ctx context.Context, e Engine, r *ListRequest) (*ListResponse, error) {
	var out ListResponse
	return &out, c.call(ctx, e, OpList, r, &out)
}

// GC removes attachments of a network that are not valid.
func (c *Client) GC(ctx context.Context, e Engine, r *GCRequest) (*GCResponse, error) {
	var out GCResponse
	return &out, c.call(ctx, e, OpGC, r, &out)
}

// Status asks whether the adapter is ready.
func (c *Client) Status(ctx context.Context, e Engine) (*StatusResponse, error) {
	var out StatusResponse
	return &out, c.call(ctx, e, OpStatus, &StatusRequest{}, &out)
}

func (c *Client) call(ctx context.Context, e Engine, op Op, req, resp any) error {
	subject := Subject(c.node, e, op)
	body, err := json.Marshal(req)
	if err != nil {
		return Errorf(CodeInternal, "encode %s request: %v", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return requestError(err, e, subject, c.timeout)
	}
	if err := ResponseError(msg); err != nil {
		return err
	}
	if err := json.Unmarshal(msg.Data, resp); err != nil {
		return Errorf(CodeDecode, "decode %s response from %s: %v", op, subject, err)
	}
	return nil
}

func requestError(err error, e Engine, subject string, timeout time.Duration) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return Errorf(CodeTryAgainLater, "no %s adapter answers on %s: is the adapter running on this node?", e, subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return Errorf(CodeTryAgainLater, "%s adapter did not answer on %s within %s", e, subject, timeout)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrDisconnected):
		return Errorf(CodeTryAgainLater, "NATS connection lost while asking %s: %v", subject, err)
	default:
		return Errorf(CodeTryAgainLater, "request on %s failed: %v", subject, err)
	}
}

// ResponseError turns a micro error response into an *Error; nil if msg is
// a normal response.
func ResponseError(msg *nats.Msg) error {
	if msg.Header == nil {
		return nil
	}
	desc := msg.Header.Get(ErrorHeader)
	codeText := msg.Header.Get(ErrorCodeHeader)
	if desc == "" && codeText == "" {
		return nil
	}
	code, err := strconv.ParseUint(codeText, 10, 32)
	if err != nil || !Code(code).Known() {
		return Errorf(CodeInternal, "adapter error with unknown code %q: %s", codeText, desc)
	}
	return &Error{Code: Code(code), Message: desc}
}

// ErrorCodeText is how a Code travels in the micro error header.
func ErrorCodeText(c Code) string { return strconv.FormatUint(uint64(c), 10) }

// The headers of a nats.go micro error response, spelled out here so that
// request-only binaries need not link the micro package.
const (
	ErrorHeader     = "Nats-Service-Error"
	ErrorCodeHeader = "Nats-Service-Error-Code"
)
