// Package service puts a contracts.Adapter on NATS as a nats.go micro
// service. It is separate from contracts so that cni-entry, a short-lived
// binary that only sends requests, does not link (and initialize) micro.
package service

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"usrsp.dev/contracts"
)

// RequestInfo describes one handled request, for the adapter's logs and
// metrics (contracts itself does not log).
type RequestInfo struct {
	Op       contracts.Op
	Subject  string
	Key      *contracts.AttachmentKey // nil for list, gc, status
	Duration time.Duration
	Err      error
}

// Config configures Add.
type Config struct {
	Node        string
	Engine      contracts.Engine
	Version     string            // adapter version (semver)
	Description string            // shown by $SRV.INFO
	Metadata    map[string]string // e.g. the vswitch version built for
	// MaxInFlight bounds requests handled at once (default 64).
	MaxInFlight int
	// RequestTimeout bounds one handler call (default 30s).
	RequestTimeout time.Duration
	// OnRequest, if set, is called after every request.
	OnRequest func(RequestInfo)
}

// Add registers a as the micro service of cfg.Engine on cfg.Node:
// one endpoint per contracts.Op under contracts.ServicePrefix. micro delivers an endpoint's
// requests one at a time, so each request runs in its own goroutine (at
// most MaxInFlight); requests for the same contracts.AttachmentKey are serialized,
// different keys proceed in parallel. Micro's own stats only see the
// dispatch, so per-endpoint request/error counts are in the stats "data".
func Add(nc *nats.Conn, cfg Config, a contracts.Adapter) (micro.Service, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	d := &dispatcher{nc: nc, cfg: cfg, a: a, sem: make(chan struct{}, cfg.MaxInFlight), counts: map[contracts.Op]*opCounts{}}
	for _, op := range contracts.Ops {
		d.counts[op] = &opCounts{}
	}
	meta := map[string]string{"engine": string(cfg.Engine), "node": cfg.Node, "api": contracts.APIVersion}
	for k, v := range cfg.Metadata {
		meta[k] = v
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:         contracts.ServiceName(cfg.Engine),
		Version:      cfg.Version,
		Description:  cfg.Description,
		Metadata:     meta,
		StatsHandler: d.stats,
	})
	if err != nil {
		return nil, err
	}
	group := svc.AddGroup(contracts.ServicePrefix(cfg.Node, cfg.Engine))
	for _, op := range contracts.Ops {
		if err := group.AddEndpoint(string(op), d.handler(op)); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	// The subscriptions are only buffered so far: make sure the server has
	// them, so a request sent right after Add finds a responder. (With
	// RetryOnFailedConnect the first connect may still be pending; the
	// subscriptions are then sent when it succeeds.)
	if nc.IsConnected() {
		if err := nc.Flush(); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	return svc, nil
}

type opCounts struct {
	Requests  uint64 `json:"requests"`
	Errors    uint64 `json:"errors"`
	LastError string `json:"last_error,omitempty"`
}

type dispatcher struct {
	nc  *nats.Conn
	cfg Config
	a   contracts.Adapter
	sem chan struct{}

	mu     sync.Mutex
	counts map[contracts.Op]*opCounts
	keys   KeyedMutex
}

func (d *dispatcher) stats(ep *micro.Endpoint) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := *d.counts[contracts.Op(ep.Name)]
	return c
}

func (d *dispatcher) handler(op contracts.Op) micro.HandlerFunc {
	return func(req micro.Request) {
		d.sem <- struct{}{}
		go func() {
			defer func() { <-d.sem }()
			d.serve(op, req)
		}()
	}
}

func (d *dispatcher) serve(op contracts.Op, req micro.Request) {
	start := time.Now()
	key, resp, err := d.decodeAndCall(op, req.Data())
	if err == nil {
		err = d.respond(req.Reply(), resp)
	}
	if err != nil {
		d.respondError(req.Reply(), err)
	}
	d.mu.Lock()
	c := d.counts[op]
	c.Requests++
	if err != nil {
		c.Errors++
		c.LastError = err.Error()
	}
	d.mu.Unlock()
	if d.cfg.OnRequest != nil {
		d.cfg.OnRequest(RequestInfo{Op: op, Subject: req.Subject(), Key: key, Duration: time.Since(start), Err: err})
	}
}

// respond and respondError publish the reply themselves: micro's
// Request.Respond would write into the request while micro's own goroutine
// reads it after the hand-off. The wire format is micro's.
func (d *dispatcher) respond(reply string, resp any) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return contracts.Errorf(contracts.CodeInternal, "encode response: %v", err)
	}
	if reply == "" {
		return nil
	}
	return d.nc.Publish(reply, b)
}

func (d *dispatcher) respondError(reply string, err error) {
	if reply == "" {
		return
	}
	msg := nats.NewMsg(reply)
	msg.Header.Set(contracts.ErrorHeader, err.Error())
	msg.Header.Set(contracts.ErrorCodeHeader, contracts.ErrorCodeText(contracts.CodeOf(err)))
	_ = d.nc.PublishMsg(msg)
}

// decodeAndCall decodes the request of op, serializes keyed ops and calls
// the adapter.
func (d *dispatcher) decodeAndCall(op contracts.Op, data []byte) (*contracts.AttachmentKey, any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RequestTimeout)
	defer cancel()
	switch op {
	case contracts.OpAttach:
		r, err := contracts.DecodeAttachRequest(data)
		if err != nil {
			return nil, nil, err
		}
		defer d.keys.Lock(r.Key)()
		resp, err := d.a.Attach(ctx, r)
		return &r.Key, resp, err
	case contracts.OpDetach:
		r, err := contracts.DecodeDetachRequest(data)
		if err != nil {
			return nil, nil, err
		}
		defer d.keys.Lock(r.Key)()
		resp, err := d.a.Detach(ctx, r)
		return &r.Key, resp, err
	case contracts.OpCheck:
		r, err := contracts.DecodeCheckRequest(data)
		if err != nil {
			return nil, nil, err
		}
		defer d.keys.Lock(r.Key)()
		resp, err := d.a.Check(ctx, r)
		return &r.Key, resp, err
	case contracts.OpList:
		r, err := contracts.DecodeListRequest(data)
		if err != nil {
			return nil, nil, err
		}
		resp, err := d.a.List(ctx, r)
		return nil, resp, err
	case contracts.OpGC:
		r, err := contracts.DecodeGCRequest(data)
		if err != nil {
			return nil, nil, err
		}
		resp, err := d.a.GC(ctx, r)
		return nil, resp, err
	case contracts.OpStatus:
		r, err := contracts.DecodeStatusRequest(data)
		if err != nil {
			return nil, nil, err
		}
		resp, err := d.a.Status(ctx, r)
		return nil, resp, err
	}
	return nil, nil, contracts.Errorf(contracts.CodeInternal, "no handler for %s", op)
}

// KeyedMutex serializes work per attachment and forgets idle keys; the
// zero value is ready. Add uses one for requests from NATS; adapters use
// their own for work that does not come through it (reconcile, tests).
type KeyedMutex struct {
	mu    sync.Mutex
	locks map[contracts.AttachmentKey]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// Lock locks k and returns its unlock.
func (m *KeyedMutex) Lock(k contracts.AttachmentKey) (unlock func()) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[contracts.AttachmentKey]*keyLock{}
	}
	l := m.locks[k]
	if l == nil {
		l = &keyLock{}
		m.locks[k] = l
	}
	l.refs++
	m.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		m.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.locks, k)
		}
		m.mu.Unlock()
	}
}
