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
	return request[AttachResponse](ctx, c, e, OpAttach, r)
}

// Detach removes an attachment; an unknown one is success.
func (c *Client) Detach(ctx context.Context, e Engine, r *DetachRequest) (*DetachResponse, error) {
	return request[DetachResponse](ctx, c, e, OpDetach, r)
}

// Check verifies an attachment.
func (c *Client) Check(ctx context.Context, e Engine, r *CheckRequest) (*CheckResponse, error) {
	return request[CheckResponse](ctx, c, e, OpCheck, r)
}

// List lists attachments.
func (c *Client) List(ctx context.Context, e Engine, r *ListRequest) (*ListResponse, error) {
	return request[ListResponse](ctx, c, e, OpList, r)
}

// GC removes attachments of a network that are not valid.
func (c *Client) GC(ctx context.Context, e Engine, r *GCRequest) (*GCResponse, error) {
	return request[GCResponse](ctx, c, e, OpGC, r)
}

// Status asks whether the adapter is ready.
func (c *Client) Status(ctx context.Context, e Engine) (*StatusResponse, error) {
	return request[StatusResponse](ctx, c, e, OpStatus, &StatusRequest{})
}

// request sends req for op to engine e and decodes the response; it is
// the one implementation behind every Client method.
func request[Resp any](ctx context.Context, c *Client, e Engine, op Op, req any) (*Resp, error) {
	var out Resp
	if err := c.call(ctx, e, op, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) call(ctx context.Context, e Engine, op Op, req, resp any) error {
	subject := Subject(c.node, e, op)
	body, err := json.Marshal(req)
	if err != nil {
		return Errorf(CodeInternal, "encode %s request: %v", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, stop := watchDenied(ctx, c.nc, subject)
	defer stop()
	msg, err := c.nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		if denied := deniedCause(ctx); denied != nil {
			return Errorf(CodeInvalidConfig, "NATS denied the request on %s: %v (check nats.credentialsFile: they must be this node's cni credentials)", subject, denied)
		}
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
