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
	for _, spec := range contracts.OpSpecs() {
		if err := group.AddEndpoint(string(spec.Op), d.handler(spec)); err != nil {
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

func (d *dispatcher) handler(spec contracts.OpSpec) micro.HandlerFunc {
	return func(req micro.Request) {
		d.sem <- struct{}{}
		go func() {
			defer func() { <-d.sem }()
			d.serve(spec, req)
		}()
	}
}

// serve handles one request. Counts and OnRequest come before the reply,
// so whoever sees the reply also sees them.
func (d *dispatcher) serve(spec contracts.OpSpec, req micro.Request) {
	op := spec.Op
	start := time.Now()
	key, resp, err := d.decodeAndCall(spec, req.Data())
	var body []byte
	if err == nil {
		if body, err = json.Marshal(resp); err != nil {
			err = contracts.Errorf(contracts.CodeInternal, "encode %s response: %v", op, err)
		}
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
	d.reply(req.Reply(), body, err)
}

// reply publishes the response or the error itself: micro's
// Request.Respond would write into the request while micro's own
// goroutine reads it after the hand-off. The wire format is micro's.
func (d *dispatcher) reply(to string, body []byte, err error) {
	if to == "" {
		return
	}
	if err == nil {
		_ = d.nc.Publish(to, body)
		return
	}
	msg := nats.NewMsg(to)
	msg.Header.Set(contracts.ErrorHeader, err.Error())
	msg.Header.Set(contracts.ErrorCodeHeader, contracts.ErrorCodeText(contracts.CodeOf(err)))
	_ = d.nc.PublishMsg(msg)
}

// decodeAndCall decodes the request of op by the contracts op table,
// serializes keyed ops and calls the adapter.
func (d *dispatcher) decodeAndCall(spec contracts.OpSpec, data []byte) (*contracts.AttachmentKey, any, error) {
	call, err := spec.Decode(data)
	if err != nil {
		return nil, nil, err
	}
	if call.Key != nil {
		defer d.keys.Lock(*call.Key)()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RequestTimeout)
	defer cancel()
	resp, err := call.Run(ctx, d.a)
	return call.Key, resp, err
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
