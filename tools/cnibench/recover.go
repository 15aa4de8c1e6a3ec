package cnibench

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"usrsp.dev/contracts"
)

// Recovery is what recover measured.
type Recovery struct {
	Attachments  int     `json:"attachments"`  // added successfully before the restart
	RestartCmdMs float64 `json:"restartCmdMs"` // the restart command's run time
	// AllBackMs is from the start of the restart command until every
	// attachment was back (or the ready command succeeded); 0 if not.
	AllBackMs float64 `json:"allBackMs"`
	Back      int     `json:"back"` // attachments seen back
	TimedOut  bool    `json:"timedOut,omitempty"`
	// PerAttachment is, for each attachment, the time from the start of
	// the restart command until its first successful check.
	PerAttachment Summary `json:"perAttachment"`
}

// Checker asks the adapter whether an attachment is in place.
type Checker interface {
	// Expect records how the adapter reports keys now, before the restart;
	// every key must be present.
	Expect(ctx context.Context, keys []contracts.AttachmentKey) error
	// Check succeeds when key is in place as recorded by Expect.
	Check(ctx context.Context, key contracts.AttachmentKey) error
}

// BatchChecker is a Checker that can tell about many keys in one look
// (e.g. one dump of the vswitch) instead of one request per key; recover
// then uses CheckMany for each pass. Use it when a per-key check is so
// costly that a pass over K keys would itself be counted as recovery time.
type BatchChecker interface {
	Checker
	// CheckMany returns the keys that are in place as recorded by Expect;
	// an error means "none known to be back yet".
	CheckMany(ctx context.Context, keys []contracts.AttachmentKey) ([]contracts.AttachmentKey, error)
}

// NATSChecker is the contracts' List and Check on one node's adapter.
type NATSChecker struct {
	Client  *contracts.Client
	Engine  contracts.Engine
	Network string

	expected map[contracts.AttachmentKey]contracts.HostInterface
}

var _ Checker = (*NATSChecker)(nil)

// Expect implements Checker: the adapter's List gives each interface as
// the adapter stores it, which Check then compares against.
func (c *NATSChecker) Expect(ctx context.Context, keys []contracts.AttachmentKey) error {
	list, err := c.Client.List(ctx, c.Engine, &contracts.ListRequest{Network: c.Network})
	if err != nil {
		return fmt.Errorf("list %s attachments of network %s: %w", c.Engine, c.Network, err)
	}
	known := map[contracts.AttachmentKey]contracts.HostInterface{}
	for _, a := range list.Attachments {
		known[a.Key] = a.Interface
	}
	c.expected = map[contracts.AttachmentKey]contracts.HostInterface{}
	missing := 0
	for _, k := range keys {
		iface, ok := known[k]
		if !ok {
			missing++
			continue
		}
		c.expected[k] = iface
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d attachments are not in the %s adapter's list of network %s before the restart", missing, len(keys), c.Engine, c.Network)
	}
	return nil
}

// Check implements Checker.
func (c *NATSChecker) Check(ctx context.Context, key contracts.AttachmentKey) error {
	_, err := c.Client.Check(ctx, c.Engine, &contracts.CheckRequest{Key: key, Network: c.Network, Interface: c.expected[key]})
	return err
}

// RecoverOptions configure Recover.
type RecoverOptions struct {
	K          int
	RestartCmd string        // run with sh -c
	ReadyCmd   string        // optional: "back" is this command exiting 0, polled
	Checker    Checker       // used when ReadyCmd is empty
	Timeout    time.Duration // for the restart command, and then for all to be back
	Poll       time.Duration // pause between check passes
	Parallel   int           // concurrent ADDs while growing, and checks per pass
	CmdOutput  io.Writer     // where the commands' output goes
}

// Recover adds K attachments, runs the restart command, and measures
// until every attachment is back; then it DELs them all.
func (b *Bench) Recover(ctx context.Context, o RecoverOptions) (Result, error) {
	p := b.plugins[0]
	adds, dels, restart := newRecorder("add"), newRecorder("del"), newRecorder("restart-cmd")
	rec := &Recovery{}
	res := func() Result {
		return Result{Label: p.Label(), Phases: []Phase{adds.phase(), restart.phase(), dels.phase()}, Recover: rec}
	}
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	b.opts.Progress.Start("recover: add", o.K)
	atts := make([]*Attachment, o.K)
	for i := range atts {
		a, err := b.newAttachment(ctx)
		if err != nil {
			return res(), err
		}
		atts[i] = a
	}
	okKeys := b.parallel(ctx, atts, o.Parallel, adds, func(a *Attachment) (time.Duration, error) { return b.add(ctx, p, a) })
	b.opts.Progress.Done()
	rec.Attachments = len(okKeys)
	err := b.measureRecovery(ctx, o, okKeys, restart, rec)
	if ctx.Err() != nil {
		return res(), ctx.Err()
	}
	b.opts.Progress.Start("recover: del", o.K)
	b.parallel(ctx, atts, o.Parallel, dels, func(a *Attachment) (time.Duration, error) { return b.del(ctx, p, a) })
	b.opts.Progress.Done()
	return res(), err
}

func (b *Bench) measureRecovery(ctx context.Context, o RecoverOptions, keys []contracts.AttachmentKey, restart *recorder, rec *Recovery) error {
	if o.ReadyCmd == "" {
		if err := o.Checker.Expect(ctx, keys); err != nil {
			return err
		}
	}
	start := time.Now()
	err := runShell(ctx, o.RestartCmd, o.Timeout, o.CmdOutput)
	restart.record(time.Since(start), err)
	rec.RestartCmdMs = ms(time.Since(start))
	if err != nil {
		return fmt.Errorf("--restart-cmd: %w", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if o.ReadyCmd != "" {
		for waitCtx.Err() == nil {
			if runShell(waitCtx, o.ReadyCmd, o.Timeout, o.CmdOutput) == nil {
				rec.AllBackMs, rec.Back = ms(time.Since(start)), len(keys)
				return nil
			}
			pause(waitCtx, o.Poll)
		}
		rec.TimedOut = ctx.Err() == nil
		return nil
	}
	backAt := b.pollBack(waitCtx, o, keys, start)
	rec.Back = len(backAt)
	rec.PerAttachment = Summarize(backAt)
	if len(backAt) == len(keys) {
		rec.AllBackMs = rec.PerAttachment.MaxMs // when the last one came back
	} else {
		rec.TimedOut = ctx.Err() == nil
	}
	return nil
}

// pollBack checks the pending keys in passes until all are back or ctx
// ends, and returns when each came back, relative to start.
func (b *Bench) pollBack(ctx context.Context, o RecoverOptions, keys []contracts.AttachmentKey, start time.Time) []time.Duration {
	pending := keys
	var backAt []time.Duration
	b.opts.Progress.Start("recover: wait", len(keys))
	defer b.opts.Progress.Done()
	back := func(at time.Duration) {
		backAt = append(backAt, at)
		b.opts.Progress.Step()
	}
	pass := func(pending []contracts.AttachmentKey) []contracts.AttachmentKey {
		return checkEach(ctx, o, pending, back, start)
	}
	if bc, ok := o.Checker.(BatchChecker); ok {
		pass = func(pending []contracts.AttachmentKey) []contracts.AttachmentKey {
			ok, err := bc.CheckMany(ctx, pending)
			if err != nil {
				return pending
			}
			at := time.Since(start)
			in := map[contracts.AttachmentKey]bool{}
			for _, k := range ok {
				in[k] = true
			}
			var still []contracts.AttachmentKey
			for _, k := range pending {
				if in[k] {
					back(at)
				} else {
					still = append(still, k)
				}
			}
			return still
		}
	}
	for len(pending) > 0 && ctx.Err() == nil {
		if pending = pass(pending); len(pending) > 0 {
			pause(ctx, o.Poll)
		}
	}
	return backAt
}

// checkEach is one pass of per-key checks, o.Parallel at a time; back is
// called (serialized) with the time each key passed. It returns the keys
// still pending.
func checkEach(ctx context.Context, o RecoverOptions, pending []contracts.AttachmentKey, back func(time.Duration), start time.Time) []contracts.AttachmentKey {
	var mu sync.Mutex
	var still []contracts.AttachmentKey
	work := make(chan contracts.AttachmentKey)
	var wg sync.WaitGroup
	for range o.Parallel {
		wg.Go(func() {
			for k := range work {
				err := o.Checker.Check(ctx, k)
				at := time.Since(start)
				mu.Lock()
				if err == nil {
					back(at)
				} else {
					still = append(still, k)
				}
				mu.Unlock()
			}
		})
	}
	for _, k := range pending {
		work <- k
	}
	close(work)
	wg.Wait()
	return still
}

// parallel runs op on atts with n workers, recording each outcome, and
// returns the keys of those that succeeded.
func (b *Bench) parallel(ctx context.Context, atts []*Attachment, n int, rec *recorder, op func(*Attachment) (time.Duration, error)) []contracts.AttachmentKey {
	var mu sync.Mutex
	var ok []contracts.AttachmentKey
	work := make(chan *Attachment)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for a := range work {
				d, err := op(a)
				if ctx.Err() != nil {
					continue
				}
				rec.record(d, err)
				b.opts.Progress.Step()
				if err == nil {
					mu.Lock()
					ok = append(ok, contracts.AttachmentKey{ContainerID: a.ContainerID, IfName: a.IfName})
					mu.Unlock()
				}
			}
		})
	}
	for _, a := range atts {
		if ctx.Err() != nil {
			break
		}
		work <- a
	}
	close(work)
	wg.Wait()
	return ok
}

// runShell runs cmd with sh -c within timeout.
func runShell(ctx context.Context, cmd string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdout, c.Stderr = out, out
	c.WaitDelay = time.Second // a backgrounded child must not hold us past the timeout
	if err := c.Run(); err != nil {
		return fmt.Errorf("%q: %w", cmd, err)
	}
	return nil
}

// pause waits d or until ctx ends. Polling is the only way to learn
// when an external vswitch has its ports back.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
