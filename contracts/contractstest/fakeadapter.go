// Package contractstest provides an in-memory adapter that serves the
// contracts over a real NATS connection, so cni-entry and tools can be
// tested without a vswitch, and RunAdapterSuite, the conformance suite
// every adapter (and FakeAdapter) passes.
package contractstest

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
)

// FakeAdapter keeps attachments in memory and behaves as the contracts say
// a real adapter does: idempotent attach and detach, CHECK that reports
// absence and mismatch, GC by network, and the standard events when
// Events is set.
type FakeAdapter struct {
	Engine contracts.Engine
	// Events, if set before serving, receives the adapter's events
	// (e.g. contracts.NewPublisher).
	Events contracts.EventPublisher

	mu       sync.Mutex
	atts     map[contracts.AttachmentKey]contracts.Attachment
	failNext map[contracts.Op]error
	notReady string
	calls    []contracts.Op
}

var _ contracts.Adapter = (*FakeAdapter)(nil)

// NewFakeAdapter returns an empty fake for engine e.
func NewFakeAdapter(e contracts.Engine) *FakeAdapter {
	return &FakeAdapter{Engine: e, atts: map[contracts.AttachmentKey]contracts.Attachment{}, failNext: map[contracts.Op]error{}}
}

// Serve registers f on nc as node's adapter; stop the returned service
// (or close nc) to take it away.
func (f *FakeAdapter) Serve(nc *nats.Conn, node string) (micro.Service, error) {
	return service.Add(nc, service.Config{Node: node, Engine: f.Engine, Version: "0.0.0-fake"}, f)
}

// FailNext makes the next call of op return err.
func (f *FakeAdapter) FailNext(op contracts.Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[op] = err
}

// SetNotReady makes Status report not ready with msg ("" makes it ready).
func (f *FakeAdapter) SetNotReady(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notReady = msg
}

// Attachments returns a copy of the current attachments, sorted by key.
func (f *FakeAdapter) Attachments() []contracts.Attachment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sortedLocked("")
}

// Calls returns the operations served so far, in order.
func (f *FakeAdapter) Calls() []contracts.Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]contracts.Op(nil), f.calls...)
}

// Put stores an attachment directly, e.g. to simulate a leftover.
func (f *FakeAdapter) Put(a contracts.Attachment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.atts[a.Key] = a
}

func (f *FakeAdapter) begin(op contracts.Op) error {
	f.mu.Lock()
	f.calls = append(f.calls, op)
	err := f.failNext[op]
	delete(f.failNext, op)
	return err
}

func (f *FakeAdapter) sortedLocked(network string) []contracts.Attachment {
	out := []contracts.Attachment{}
	for _, a := range f.atts {
		if network == "" || a.Network == network {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// publish sends ev to Events, if set; events are best effort.
func (f *FakeAdapter) publish(ev contracts.Event) {
	if f.Events != nil {
		_ = f.Events.Publish(ev)
	}
}

// failed publishes the error event of a failed op and returns err.
func (f *FakeAdapter) failed(op contracts.Op, k *contracts.AttachmentKey, network string, start time.Time, err error) error {
	f.publish(contracts.ErrorEvent(op, k, network, time.Since(start), err))
	return err
}

// Attach implements contracts.Adapter.
func (f *FakeAdapter) Attach(_ context.Context, r *contracts.AttachRequest) (*contracts.AttachResponse, error) {
	start := time.Now()
	a, err := f.attach(r)
	if err != nil {
		return nil, f.failed(contracts.OpAttach, &r.Key, r.Network, start, err)
	}
	f.publish(contracts.AttachedEvent(r.Key, r.Network, time.Since(start), "fake interface "+a.HostIfName))
	return &contracts.AttachResponse{Attachment: a}, nil
}

func (f *FakeAdapter) attach(r *contracts.AttachRequest) (contracts.Attachment, error) {
	err := f.begin(contracts.OpAttach)
	defer f.mu.Unlock()
	if err != nil {
		return contracts.Attachment{}, err
	}
	if a, ok := f.atts[r.Key]; ok {
		if !reflect.DeepEqual(a.Interface, r.Interface) || a.Network != r.Network {
			return contracts.Attachment{}, contracts.Errorf(contracts.CodeConflict, "attachment %s exists with another configuration", r.Key)
		}
		return a, nil
	}
	a := contracts.Attachment{
		Key: r.Key, Network: r.Network, Engine: f.Engine, Pod: r.Pod, Interface: r.Interface,
		HostIfName: "fake-" + r.Key.ShortID(), SocketPath: r.Interface.SocketPath,
		HostMAC: "02:fe:00:00:00:01", CreatedAt: time.Now().UTC(),
	}
	f.atts[r.Key] = a
	return a, nil
}

// Detach implements contracts.Adapter.
func (f *FakeAdapter) Detach(_ context.Context, r *contracts.DetachRequest) (*contracts.DetachResponse, error) {
	start := time.Now()
	err := f.begin(contracts.OpDetach)
	a, ok := f.atts[r.Key]
	if err == nil {
		delete(f.atts, r.Key)
	}
	f.mu.Unlock()
	if err != nil {
		return nil, f.failed(contracts.OpDetach, &r.Key, r.Network, start, err)
	}
	if ok {
		f.publish(contracts.DetachedEvent(r.Key, a.Network, time.Since(start), "fake interface "+a.HostIfName))
	}
	return &contracts.DetachResponse{Removed: ok}, nil
}

// Check implements contracts.Adapter.
func (f *FakeAdapter) Check(_ context.Context, r *contracts.CheckRequest) (*contracts.CheckResponse, error) {
	start := time.Now()
	a, err := f.check(r)
	if err != nil {
		return nil, f.failed(contracts.OpCheck, &r.Key, r.Network, start, err)
	}
	return &contracts.CheckResponse{Attachment: a}, nil
}

func (f *FakeAdapter) check(r *contracts.CheckRequest) (contracts.Attachment, error) {
	err := f.begin(contracts.OpCheck)
	defer f.mu.Unlock()
	if err != nil {
		return contracts.Attachment{}, err
	}
	a, ok := f.atts[r.Key]
	if !ok {
		return a, contracts.Errorf(contracts.CodeNotFound, "attachment %s not found on %s", r.Key, f.Engine)
	}
	if !reflect.DeepEqual(a.Interface, r.Interface) || a.Network != r.Network {
		return a, contracts.Errorf(contracts.CodeMismatch, "attachment %s differs from its configuration", r.Key)
	}
	return a, nil
}

// List implements contracts.Adapter.
func (f *FakeAdapter) List(_ context.Context, r *contracts.ListRequest) (*contracts.ListResponse, error) {
	start := time.Now()
	err := f.begin(contracts.OpList)
	list := f.sortedLocked(r.Network)
	f.mu.Unlock()
	if err != nil {
		return nil, f.failed(contracts.OpList, nil, r.Network, start, err)
	}
	return &contracts.ListResponse{Attachments: list}, nil
}

// GC implements contracts.Adapter.
func (f *FakeAdapter) GC(_ context.Context, r *contracts.GCRequest) (*contracts.GCResponse, error) {
	start := time.Now()
	err := f.begin(contracts.OpGC)
	removed := []contracts.AttachmentKey{}
	if err == nil {
		valid := map[contracts.AttachmentKey]bool{}
		for _, k := range r.Valid {
			valid[k] = true
		}
		for k, a := range f.atts {
			if a.Network == r.Network && !valid[k] {
				delete(f.atts, k)
				removed = append(removed, k)
			}
		}
	}
	f.mu.Unlock()
	if err != nil {
		return nil, f.failed(contracts.OpGC, nil, r.Network, start, err)
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i].String() < removed[j].String() })
	for _, k := range removed {
		f.publish(contracts.GCEvent(k, r.Network, time.Since(start), ""))
	}
	return &contracts.GCResponse{Removed: removed}, nil
}

// Status implements contracts.Adapter.
func (f *FakeAdapter) Status(context.Context, *contracts.StatusRequest) (*contracts.StatusResponse, error) {
	start := time.Now()
	err := f.begin(contracts.OpStatus)
	st := &contracts.StatusResponse{Ready: f.notReady == "", Message: f.notReady, Engine: f.Engine,
		Version: "0.0.0-fake", Vswitch: "fake", Attachments: len(f.atts)}
	f.mu.Unlock()
	if err != nil {
		return nil, f.failed(contracts.OpStatus, nil, "", start, err)
	}
	return st, nil
}
