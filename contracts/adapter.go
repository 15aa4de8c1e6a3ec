package contracts

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
)

// Adapter is what an engine adapter implements; contracts/service puts it on NATS.
// Methods return *Error values to choose the code; any other error is
// CodeInternal.
type Adapter interface {
	Attach(context.Context, *AttachRequest) (*AttachResponse, error)
	Detach(context.Context, *DetachRequest) (*DetachResponse, error)
	Check(context.Context, *CheckRequest) (*CheckResponse, error)
	List(context.Context, *ListRequest) (*ListResponse, error)
	GC(context.Context, *GCRequest) (*GCResponse, error)
	Status(context.Context, *StatusRequest) (*StatusResponse, error)
}

// Publisher publishes adapter events on their subjects.
type Publisher struct {
	nc     *nats.Conn
	node   string
	engine Engine
}

// NewPublisher returns a Publisher for one adapter.
func NewPublisher(nc *nats.Conn, node string, e Engine) *Publisher {
	return &Publisher{nc: nc, node: node, engine: e}
}

// Publish sends ev (filling node, engine and time). Events are best effort:
// tracing must never fail an attachment, so the error is only returned for
// the caller to log.
func (p *Publisher) Publish(ev Event) error {
	ev.Node, ev.Engine = p.node, p.engine
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return p.nc.Publish(EventSubject(p.node, p.engine, ev.Kind), b)
}
