// Package cnibench measures CNI plugins the way a runtime drives them:
// through libcni, one network namespace per attachment, with the
// Kubernetes CNI_ARGS Multus passes. Modes: latency, burst, scale and
// recover; see README.md.
package cnibench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Bench.
type Options struct {
	IfName    string        // CNI_IFNAME of every attachment
	Netns     NetnsMode     // auto, real or none
	OpTimeout time.Duration // bounds one ADD or DEL
	Warmup    int           // unrecorded ADD+DEL per plugin before latency and burst
	Progress  *Progress     // nil: no progress bar
}

// Bench runs benchmark modes on one plugin, or two interleaved.
type Bench struct {
	plugins []Plugin
	opts    Options
	ns      namespaces
	runID   string
	seq     atomic.Int64

	mu    sync.Mutex
	live  map[*Attachment]Plugin // ADD started and no DEL succeeded yet
	netns map[string]bool        // namespaces created and not yet deleted
}

// New returns a Bench of plugins (A first). Nothing runs yet.
func New(plugins []Plugin, o Options) (*Bench, error) {
	if len(plugins) == 0 {
		return nil, errors.New("no plugin to benchmark")
	}
	if o.IfName == "" {
		o.IfName = "net1"
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = time.Minute
	}
	real := false
	switch o.Netns {
	case NetnsReal:
		real = true
	case NetnsAuto, "":
		real = os.Geteuid() == 0
	case NetnsNone:
	default:
		return nil, fmt.Errorf("netns mode %q is not auto, real or none", o.Netns)
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return &Bench{plugins: plugins, opts: o, ns: namespaces{real: real, shared: &sharedNetns{}},
		runID: hex.EncodeToString(id), live: map[*Attachment]Plugin{}, netns: map[string]bool{}}, nil
}

// RealNetns reports whether attachments get real network namespaces.
func (b *Bench) RealNetns() bool { return b.ns.real }

// newAttachment makes a unique attachment in a fresh namespace. The
// container id is 64 hex characters, like a runtime's, starting with the
// run id so leftovers of a run can be told apart.
func (b *Bench) newAttachment(ctx context.Context) (*Attachment, error) {
	n := b.seq.Add(1)
	a := &Attachment{
		ContainerID: fmt.Sprintf("%s%056x", b.runID, n),
		IfName:      b.opts.IfName,
		PodUID:      fmt.Sprintf("%s-0000-4000-8000-%012x", b.runID, n),
		PodName:     fmt.Sprintf("bench-%d", n),
	}
	path, name, err := b.ns.create(ctx, fmt.Sprintf("cnibench-%s-%d", b.runID, n))
	if err != nil {
		return nil, err
	}
	a.Netns, a.netnsName = path, name
	if name != "" {
		b.mu.Lock()
		b.netns[name] = true
		b.mu.Unlock()
	}
	return a, nil
}

// add runs one timed ADD. The attachment counts as live from before the
// plugin starts: an ADD killed half-way may have left state behind.
func (b *Bench) add(ctx context.Context, p Plugin, a *Attachment) (time.Duration, error) {
	b.mu.Lock()
	b.live[a] = p
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.opts.OpTimeout)
	defer cancel()
	start := time.Now()
	err := p.Add(ctx, a)
	return time.Since(start), err
}

// del runs one timed DEL; once it succeeds the namespace goes too (if
// that fails, Cleanup tries again: it is not the plugin's failure).
func (b *Bench) del(ctx context.Context, p Plugin, a *Attachment) (time.Duration, error) {
	opCtx, cancel := context.WithTimeout(ctx, b.opts.OpTimeout)
	defer cancel()
	start := time.Now()
	err := p.Del(opCtx, a)
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	b.mu.Lock()
	delete(b.live, a)
	b.mu.Unlock()
	_ = b.removeNetns(context.WithoutCancel(ctx), a.netnsName)
	return d, nil
}

func (b *Bench) removeNetns(ctx context.Context, name string) error {
	if err := b.ns.remove(ctx, name); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.netns, name)
	b.mu.Unlock()
	return nil
}

// Live is the number of attachments not yet deleted.
func (b *Bench) Live() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.live)
}

// Cleanup deletes every live attachment, a few at a time, within
// timeout (what Ctrl-C and failed DELs leave), then every namespace the
// run created. It returns how many attachments are still left.
func (b *Bench) Cleanup(timeout time.Duration) (left int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b.mu.Lock()
	todo := make(map[*Attachment]Plugin, len(b.live))
	for a, p := range b.live {
		todo[a] = p
	}
	b.mu.Unlock()
	var mu sync.Mutex
	var errs []error
	work := make(chan *Attachment)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for a := range work {
				if _, err := b.del(ctx, todo[a], a); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("DEL %s/%s: %w", a.ContainerID, a.IfName, err))
					mu.Unlock()
				}
			}
		})
	}
	for a := range todo {
		work <- a
	}
	close(work)
	wg.Wait()
	b.mu.Lock()
	names := make([]string, 0, len(b.netns))
	for name := range b.netns {
		names = append(names, name)
	}
	b.mu.Unlock()
	for _, name := range names {
		if err := b.removeNetns(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	// NetnsNone's shared namespace; attachments a failed DEL left behind
	// need no namespace for their next DEL (their plugins never enter it).
	errs = append(errs, b.ns.shared.close())
	return b.Live(), errors.Join(errs...)
}

// recorder collects one phase's outcomes; safe for concurrent use.
type recorder struct {
	name     string
	mu       sync.Mutex
	ok       []time.Duration
	failures map[uint]*Failure
	failed   int
	wall     time.Duration
}

func newRecorder(name string) *recorder {
	return &recorder{name: name, failures: map[uint]*Failure{}}
}

func (r *recorder) record(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.ok = append(r.ok, d)
		return
	}
	r.failed++
	code := ErrorCode(err)
	f := r.failures[code]
	if f == nil {
		f = &Failure{Code: code, Example: truncate(err.Error(), 300)}
		r.failures[code] = f
	}
	f.Count++
}

func (r *recorder) addWall(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wall += d
}

func (r *recorder) phase() Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Phase{Name: r.name, OK: len(r.ok), Failed: r.failed, Latency: Summarize(r.ok), Histogram: Histogram(r.ok)}
	if r.wall > 0 {
		p.WallMs = ms(r.wall)
		p.PerSecond = float64(len(r.ok)) / r.wall.Seconds()
	}
	for _, f := range r.failures {
		p.Failures = append(p.Failures, *f)
	}
	sortFailures(p.Failures)
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Schedule is the order in which plugins take turns: iteration i runs
// plugin 0, 1, … in turn, so A and B alternate (A,B,A,B…) and slow drift
// of the machine (thermal, page cache, other jobs) hits both alike.
func Schedule(iterations, plugins int) []int {
	out := make([]int, 0, iterations*plugins)
	for range iterations {
		for p := range plugins {
			out = append(out, p)
		}
	}
	return out
}

// cycle runs one ADD and, if it succeeded, its DEL, recording both.
func (b *Bench) cycle(ctx context.Context, p Plugin, addRec, delRec *recorder) error {
	a, err := b.newAttachment(ctx)
	if err != nil {
		return err
	}
	d, err := b.add(ctx, p, a)
	if ctx.Err() != nil {
		return ctx.Err() // interrupted: not a plugin failure; Cleanup DELs it
	}
	if addRec != nil {
		addRec.record(d, err)
	}
	// DEL even after a failed ADD, as a runtime does: it must be safe.
	d, err = b.del(ctx, p, a)
	if delRec != nil && ctx.Err() == nil {
		delRec.record(d, err)
	}
	return ctx.Err()
}

// warmup runs unrecorded cycles so that the first measured exec does not
// pay for a cold page cache.
func (b *Bench) warmup(ctx context.Context) error {
	for range b.opts.Warmup {
		for _, p := range b.plugins {
			if err := b.cycle(ctx, p, nil, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// Latency runs n iterations; in each, every plugin in turn does one ADD
// then its DEL, so exactly one attachment exists at a time.
func (b *Bench) Latency(ctx context.Context, n int) ([]Result, error) {
	adds, dels := b.recorders("add"), b.recorders("del")
	if err := b.warmup(ctx); err != nil {
		return b.results(adds, dels), err
	}
	b.opts.Progress.Start("latency", n*len(b.plugins))
	defer b.opts.Progress.Done()
	for _, i := range Schedule(n, len(b.plugins)) {
		if err := b.cycle(ctx, b.plugins[i], adds[i], dels[i]); err != nil {
			return b.results(adds, dels), err
		}
		b.opts.Progress.Step()
	}
	return b.results(adds, dels), nil
}

// Burst runs rounds; in each, every plugin in turn ADDs c attachments at
// once (released together), then DELs them at once. DEL goes to every
// attachment, also those whose ADD failed, as a runtime would.
func (b *Bench) Burst(ctx context.Context, c, rounds int) ([]Result, error) {
	adds, dels := b.recorders("add"), b.recorders("del")
	if err := b.warmup(ctx); err != nil {
		return b.results(adds, dels), err
	}
	b.opts.Progress.Start("burst", 2*c*rounds*len(b.plugins))
	defer b.opts.Progress.Done()
	for _, i := range Schedule(rounds, len(b.plugins)) {
		p := b.plugins[i]
		atts := make([]*Attachment, c)
		for j := range atts {
			a, err := b.newAttachment(ctx)
			if err != nil {
				return b.results(adds, dels), err
			}
			atts[j] = a
		}
		b.concurrently(ctx, atts, adds[i], func(a *Attachment) (time.Duration, error) { return b.add(ctx, p, a) })
		if ctx.Err() != nil {
			return b.results(adds, dels), ctx.Err()
		}
		b.concurrently(ctx, atts, dels[i], func(a *Attachment) (time.Duration, error) { return b.del(ctx, p, a) })
		if ctx.Err() != nil {
			return b.results(adds, dels), ctx.Err()
		}
	}
	return b.results(adds, dels), nil
}

// concurrently starts op on every attachment at the same moment and
// records each outcome and the wall time until the last one finished.
func (b *Bench) concurrently(ctx context.Context, atts []*Attachment, rec *recorder, op func(*Attachment) (time.Duration, error)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range atts {
		wg.Go(func() {
			<-start
			d, err := op(a)
			if ctx.Err() == nil {
				rec.record(d, err)
			}
			b.opts.Progress.Step()
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	rec.addWall(time.Since(t0))
}

func (b *Bench) recorders(name string) []*recorder {
	rs := make([]*recorder, len(b.plugins))
	for i := range rs {
		rs[i] = newRecorder(name)
	}
	return rs
}

// results turns per-plugin recorders into Results, phases in the order
// given.
func (b *Bench) results(phases ...[]*recorder) []Result {
	out := make([]Result, len(b.plugins))
	for i, p := range b.plugins {
		out[i].Label = p.Label()
		for _, recs := range phases {
			out[i].Phases = append(out[i].Phases, recs[i].phase())
		}
	}
	return out
}
