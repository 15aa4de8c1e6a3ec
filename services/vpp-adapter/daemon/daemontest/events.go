package daemontest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

// EventWait bounds every wait for an event (a VPP restart and its replay
// take seconds on a loaded machine).
const EventWait = 60 * time.Second

// Events records the events an adapter publishes, handed over directly
// (it is a contracts.EventPublisher) or read from NATS (Subscribe); tests
// wait on it instead of sleeping.
type Events struct {
	ch chan contracts.Event
}

var _ contracts.EventPublisher = (*Events)(nil)

// NewEvents returns an empty recorder.
func NewEvents() *Events { return &Events{ch: make(chan contracts.Event, 1024)} }

// Publish records ev; it never blocks the adapter (a test waits for far
// fewer events than the buffer holds).
func (e *Events) Publish(ev contracts.Event) error {
	select {
	case e.ch <- ev:
	default:
	}
	return nil
}

// Subscribe records every adapter event on nc, as `nats sub
// 'usrsp.v1.*.*.event.>'` shows them, until the test ends.
func (e *Events) Subscribe(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.Subscribe(contracts.AllEventsSubject, func(m *nats.Msg) {
		if ev, err := contracts.DecodeEvent(m.Data); err == nil {
			_ = e.Publish(*ev)
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
}

// Next returns the next event, failing t after EventWait.
func (e *Events) Next(t *testing.T) contracts.Event {
	t.Helper()
	select {
	case ev := <-e.ch:
		t.Logf("event %s %v network=%q: %s", ev.Kind, ev.Key, ev.Network, ev.Message)
		return ev
	case <-time.After(EventWait):
		t.Fatalf("no event within %s", EventWait)
		return contracts.Event{}
	}
}

// WaitFor returns the next event of kind, skipping others, failing t
// after EventWait.
func (e *Events) WaitFor(t *testing.T, kind contracts.EventKind) contracts.Event {
	t.Helper()
	deadline := time.After(EventWait)
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", kind, EventWait)
		}
	}
}
