package contracts

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
)

// Event is published by adapters on EventSubject for tracing.
//
// Every adapter builds its events with the constructors below, so both
// engines publish the same shape:
//
//	what happened                  Kind        Key  Network  Message
//	attach succeeded               attached    yes  yes      "attached[: <detail>]"
//	detach removed something       detached    yes  yes      "detached[: <detail>]"
//	GC removed one attachment      detached    yes  yes      "garbage collected[: <detail>]" (one event per attachment)
//	a request failed (any op, a    error       when when     "<op>: <error>", Code set
//	  CHECK mismatch or not-found)             known known
//	reconcile/replay did something reconciled  when when     "reconciled[: <detail>]"
//
// Detail is engine-specific prose (the OVS port, the VPP interface and
// bridge domain) after the common prefix; consumers match on Kind and
// the prefix. A detach of an unknown attachment and a CHECK that passes
// publish nothing.
type Event struct {
	Kind    EventKind      `json:"kind"`
	Node    string         `json:"node"`
	Engine  Engine         `json:"engine"`
	Key     *AttachmentKey `json:"key,omitempty"`
	Network string         `json:"network,omitempty"`
	Message string         `json:"message,omitempty"`
	// Code is the error's code in an error event (CodeMismatch for a
	// CHECK that found a difference).
	Code     Code          `json:"code,omitempty"`
	Duration time.Duration `json:"durationNs,omitempty"`
	Time     time.Time     `json:"time"`
}

// The common message prefixes of events.
const (
	MsgAttached         = "attached"
	MsgDetached         = "detached"
	MsgGarbageCollected = "garbage collected"
	MsgReconciled       = "reconciled"
)

func withDetail(prefix, detail string) string {
	if detail == "" {
		return prefix
	}
	return prefix + ": " + detail
}

// AttachedEvent is the event of a successful attach (also a replay).
func AttachedEvent(k AttachmentKey, network string, d time.Duration, detail string) Event {
	return Event{Kind: EventAttached, Key: &k, Network: network, Duration: d, Message: withDetail(MsgAttached, detail)}
}

// DetachedEvent is the event of a detach that removed the attachment.
func DetachedEvent(k AttachmentKey, network string, d time.Duration, detail string) Event {
	return Event{Kind: EventDetached, Key: &k, Network: network, Duration: d, Message: withDetail(MsgDetached, detail)}
}

// GCEvent is the event of one attachment that GC removed.
func GCEvent(k AttachmentKey, network string, d time.Duration, detail string) Event {
	return Event{Kind: EventDetached, Key: &k, Network: network, Duration: d, Message: withDetail(MsgGarbageCollected, detail)}
}

// ErrorEvent is the event of a failed op (key and network when the
// request has them); Code is CodeOf(err).
func ErrorEvent(op Op, k *AttachmentKey, network string, d time.Duration, err error) Event {
	ev := Event{Kind: EventError, Network: network, Duration: d, Code: CodeOf(err), Message: string(op) + ": " + err.Error()}
	if k != nil {
		key := *k
		ev.Key = &key
	}
	return ev
}

// ReconciledEvent is the event of one thing a reconcile or replay did
// (key and network when it concerns one attachment).
func ReconciledEvent(k *AttachmentKey, network string, d time.Duration, detail string) Event {
	ev := Event{Kind: EventReconciled, Network: network, Duration: d, Message: withDetail(MsgReconciled, detail)}
	if k != nil {
		key := *k
		ev.Key = &key
	}
	return ev
}

// EventPublisher is where an adapter sends its events; *Publisher puts
// them on NATS, tests record them.
type EventPublisher interface {
	Publish(Event) error
}

// Publisher publishes adapter events on their subjects.
type Publisher struct {
	nc     *nats.Conn
	node   string
	engine Engine
}

var _ EventPublisher = (*Publisher)(nil)

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
