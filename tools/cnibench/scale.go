package cnibench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ScaleStep is what scale saw with Attachments held.
type ScaleStep struct {
	Attachments int `json:"attachments"`
	// Probe is the ADD time of short-lived probe attachments (ADD, DEL)
	// made while Attachments were held.
	Probe Summary `json:"probe"`
	// Window is the ADD time of the attachments added to get here from
	// the previous step (empty at 0).
	Window Summary `json:"window"`
	// RSSKiB is the adapter's resident set (VmRSS) here; 0 without --pid.
	RSSKiB int64 `json:"rssKiB,omitempty"`
}

// ScaleOptions configure Scale.
type ScaleOptions struct {
	K      int // attachments to grow to
	Step   int // sample every Step attachments
	Probes int // probe ADD+DEL cycles per sample
	PID    int // the adapter's pid for RSS; 0: none
}

// Scale grows the first plugin to K attachments, one ADD at a time,
// sampling at 0, Step, 2·Step, … K; then DELs them all.
func (b *Bench) Scale(ctx context.Context, o ScaleOptions) (Result, error) {
	p := b.plugins[0]
	grow, probe, dels := newRecorder("add"), newRecorder("probe-add"), newRecorder("del")
	res := func() Result {
		return Result{Label: p.Label(), Phases: []Phase{grow.phase(), probe.phase(), dels.phase()}}
	}
	var steps []ScaleStep
	var held []*Attachment
	b.opts.Progress.Start("scale", 2*o.K)
	defer b.opts.Progress.Done()
	for level := 0; ; level = min(level+o.Step, o.K) {
		if level > 0 {
			window := newRecorder("window")
			for len(held) < level {
				a, err := b.newAttachment(ctx)
				if err != nil {
					return withSteps(res(), steps), err
				}
				d, err := b.add(ctx, p, a)
				if ctx.Err() != nil {
					return withSteps(res(), steps), ctx.Err()
				}
				grow.record(d, err)
				window.record(d, err)
				held = append(held, a) // a failed ADD is still DELed at the end
				b.opts.Progress.Step()
			}
			steps = append(steps, ScaleStep{Attachments: level, Window: Summarize(window.ok)})
		} else {
			steps = append(steps, ScaleStep{})
		}
		step := &steps[len(steps)-1]
		stepProbe := newRecorder("probe")
		for range o.Probes {
			if err := b.cycle(ctx, p, stepProbe, nil); err != nil {
				return withSteps(res(), steps), err
			}
		}
		step.Probe = Summarize(stepProbe.ok)
		mergeInto(probe, stepProbe)
		if o.PID > 0 {
			rss, err := ReadRSS(o.PID)
			if err != nil {
				return withSteps(res(), steps), err
			}
			step.RSSKiB = rss
		}
		if level >= o.K {
			break
		}
	}
	for _, a := range held {
		d, err := b.del(ctx, p, a)
		if ctx.Err() != nil {
			return withSteps(res(), steps), ctx.Err()
		}
		dels.record(d, err)
		b.opts.Progress.Step()
	}
	return withSteps(res(), steps), nil
}

func withSteps(r Result, steps []ScaleStep) Result {
	r.Scale = steps
	return r
}

func mergeInto(dst, src *recorder) {
	src.mu.Lock()
	defer src.mu.Unlock()
	dst.mu.Lock()
	defer dst.mu.Unlock()
	dst.ok = append(dst.ok, src.ok...)
	dst.failed += src.failed
	for code, f := range src.failures {
		if g := dst.failures[code]; g != nil {
			g.Count += f.Count
		} else {
			c := *f
			dst.failures[code] = &c
		}
	}
}

// ReadRSS is VmRSS of pid in KiB, from /proc/<pid>/status.
func ReadRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("--pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status VmRSS %q: %w", pid, rest, err)
			}
			return kb, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS (a kernel thread or a zombie?)", pid)
}
