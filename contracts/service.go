package contracts

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Adapter is what an engine adapter implements; AddService puts it on NATS.
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

// RequestInfo describes one handled request, for the adapter's logs and
// metrics (contracts itself does not log).
type RequestInfo struct {
	Op       Op
	Subject  string
	Key      *AttachmentKey // nil for list, gc, status
	Duration time.Duration
	Err      error
}

// ServiceConfig configures AddService.
type ServiceConfig struct {
	Node        string
	Engine      Engine
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

// AddService registers a as the micro service of cfg.Engine on cfg.Node:
// one endpoint per Op under ServicePrefix. micro delivers an endpoint's
// requests one at a time, so each request runs in its own goroutine (at
// most MaxInFlight); requests for the same AttachmentKey are serialized,
// different keys proceed in parallel. Micro's own stats only see the
// dispatch, so per-endpoint request/error counts are in the stats "data".
func AddService(nc *nats.Conn, cfg ServiceConfig, a Adapter) (micro.Service, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	d := &dispatcher{cfg: cfg, a: a, sem: make(chan struct{}, cfg.MaxInFlight), counts: map[Op]*opCounts{}}
	for _, op := range Ops {
		d.counts[op] = &opCounts{}
	}
	meta := map[string]string{"engine": string(cfg.Engine), "node": cfg.Node, "api": APIVersion}
	for k, v := range cfg.Metadata {
		meta[k] = v
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:         ServiceName(cfg.Engine),
		Version:      cfg.Version,
		Description:  cfg.Description,
		Metadata:     meta,
		StatsHandler: d.stats,
	})
	if err != nil {
		return nil, err
	}
	group := svc.AddGroup(ServicePrefix(cfg.Node, cfg.Engine))
	for _, op := range Ops {
		if err := group.AddEndpoint(string(op), d.handler(op)); err != nil {
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
	cfg ServiceConfig
	a   Adapter
	sem chan struct{}

	mu     sync.Mutex
	counts map[Op]*opCounts
	keys   keyedMutex
}

func (d *dispatcher) stats(ep *micro.Endpoint) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := *d.counts[Op(ep.Name)]
	return c
}

func (d *dispatcher) handler(op Op) micro.HandlerFunc {
	return func(req micro.Request) {
		d.sem <- struct{}{}
		go func() {
			defer func() { <-d.sem }()
			d.serve(op, req)
		}()
	}
}

func (d *dispatcher) serve(op Op, req micro.Request) {
	start := time.Now()
	key, resp, err := d.decodeAndCall(op, req.Data())
	if err == nil {
		err = req.RespondJSON(resp)
	} else {
		code := CodeOf(err)
		_ = req.Error(errorCodeText(code), err.Error(), nil)
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

// decodeAndCall decodes the request of op, serializes keyed ops and calls
// the adapter.
func (d *dispatcher) decodeAndCall(op Op, data []byte) (*AttachmentKey, any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RequestTimeout)
	defer cancel()
	switch op {
	case OpAttach:
		r, err := DecodeAttachRequest(data)
		if err != nil {
			return nil, nil, err
		}
		defer d.keys.lock(r.Key)()
		resp, err := d.a.Attach(ctx, r)
		return &r.Key, resp, err
	case OpDetach:
		r, err := DecodeDetachRequest(data)
		if err != nil {
			return nil, nil, err
		}
		defer d.keys.lock(r.Key)()
		resp, err := d.a.Detach(ctx, r)
		return &r.Key, resp, err
	case OpCheck:
		r, err := DecodeCheckRequest(data)
		if err != nil {
			return nil, nil, err
		}
		defer d.keys.lock(r.Key)()
		resp, err := d.a.Check(ctx, r)
		return &r.Key, resp, err
	case OpList:
		r, err := DecodeListRequest(data)
		if err != nil {
			return nil, nil, err
		}
		resp, err := d.a.List(ctx, r)
		return nil, resp, err
	case OpGC:
		r, err := DecodeGCRequest(data)
		if err != nil {
			return nil, nil, err
		}
		resp, err := d.a.GC(ctx, r)
		return nil, resp, err
	case OpStatus:
		r, err := DecodeStatusRequest(data)
		if err != nil {
			return nil, nil, err
		}
		resp, err := d.a.Status(ctx, r)
		return nil, resp, err
	}
	return nil, nil, Errorf(CodeInternal, "no handler for %s", op)
}

// keyedMutex serializes work per AttachmentKey and forgets idle keys.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[AttachmentKey]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks k and returns its unlock.
func (m *keyedMutex) lock(k AttachmentKey) func() {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[AttachmentKey]*keyLock{}
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
