package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"usrsp.dev/tools/cnibench"
)

// Schema names the JSON layout of bench/results/<date>.json; bump it when
// a field changes meaning. v2: engines other than OVS (vswitch probes
// instead of ovs-vsctl ones, the adapter's replays after recover's
// restart); Rerender reads v1 too.
const Schema = "usrsp.bench/v2"

// Results is everything one `make bench` measured.
type Results struct {
	Schema   string    `json:"schema"`
	Started  time.Time `json:"started"`
	RuntimeS float64   `json:"runtimeS"`
	Machine  Machine   `json:"machine"`
	Params   Params    `json:"params"`
	// Baselines without a vswitch, shared by every port kind.
	Baselines Baselines   `json:"baselines"`
	Engines   []EngineRun `json:"engines"`
	GoBench   []GoBench   `json:"goBench"`
	Targets   []Target    `json:"targets"`
	Errors    []string    `json:"errors,omitempty"` // steps that failed; their numbers are missing
	// Notes are the operator's remarks on this run (e.g. what else ran on
	// the machine), added to the JSON by hand and shown by --rerender.
	Notes []string `json:"notes,omitempty"`
}

// Params are the sizes run (what the time budget allowed).
type Params struct {
	LatencyN int `json:"latencyN"`
	BurstC   int `json:"burstC"`
	ScaleK   int `json:"scaleK"`
	Step     int `json:"scaleStep"`
	RecoverK int `json:"recoverK"`
	ProbesN  int `json:"vsctlProbes"`
}

// Baselines isolate cni-entry's share of an ADD.
type Baselines struct {
	// IPAM is libcni running host-local alone (ADD) on the same kind of
	// config: what cni-entry's IPAM delegation costs.
	IPAM *cnibench.Report `json:"ipam,omitempty"`
	// FakeAdapter is userspace against contractstest.FakeAdapter on the
	// same NATS: cni-entry's whole ADD with an adapter that costs nothing.
	FakeAdapter *cnibench.Report `json:"fakeAdapter,omitempty"`
}

// EngineRun is one vswitch's runs; Skipped says why there are none.
type EngineRun struct {
	Engine  string `json:"engine"`
	Skipped string `json:"skipped,omitempty"`
	// Vswitch and Adapter are the versions the adapter's status reported.
	Vswitch string `json:"vswitch,omitempty"`
	Adapter string `json:"adapter,omitempty"`
	// Restart is what recover's restart does to this vswitch.
	Restart string `json:"restart,omitempty"`
	// Load is the machine's 1-minute load average when this engine's run
	// started and ended: other work on a shared machine moves every number.
	Load  string    `json:"load,omitempty"`
	Ports []PortRun `json:"ports,omitempty"`
}

// PortRun is the four cnibench modes on one port kind, plus what the
// adapter and the vswitch alone took.
type PortRun struct {
	Port    string `json:"port"` // vhost-user-client, memif
	Network string `json:"network"`
	// ScaleK and RecoverK are the sizes run for this port kind (memif is
	// capped, see Options.MemifMax).
	ScaleK   int              `json:"scaleK"`
	RecoverK int              `json:"recoverK"`
	Latency  *cnibench.Report `json:"latency,omitempty"`
	Burst    *cnibench.Report `json:"burst,omitempty"`
	Scale    *cnibench.Report `json:"scale,omitempty"`
	Recover  *cnibench.Report `json:"recover,omitempty"`
	// AdapterAttach is the adapter's own attach time (its "attached"
	// events' duration) during the latency run.
	AdapterAttach cnibench.Summary `json:"adapterAttach"`
	// VswitchAdd is the vswitch creating a port of the same kind through
	// its own tool, outside the adapter (OVS: `ovs-vsctl add-port`, which
	// waits until ovs-vswitchd applied it; VPP: a vppctl script creating,
	// tagging, bridging and enabling it); VswitchNoop a request through the
	// same tool that the vswitch does nothing for. Their difference
	// estimates the vswitch's share of an attach. VswitchProbe says what
	// ran.
	VswitchAdd   cnibench.Summary `json:"vswitchAdd"`
	VswitchNoop  cnibench.Summary `json:"vswitchNoop"`
	VswitchProbe string           `json:"vswitchProbe,omitempty"`
	// Reconciled are the adapter's "reconciled" events after recover's
	// restart.
	Reconciled Replays `json:"reconciled"`
}

// Status of a target.
const (
	Met    = "met"
	Missed = "missed"
	NoData = "n/a"
)

// Target is one of issue 6's goals (issue 9 for VPP) for one engine and
// port kind.
type Target struct {
	Engine string `json:"engine"`
	Port   string `json:"port"`
	Name   string `json:"name"`
	Goal   string `json:"goal"`
	Value  string `json:"value"`
	Status string `json:"status"` // met, missed, n/a
	How    string `json:"how"`    // how the value was derived
}

func phase(r *cnibench.Report, name string) *cnibench.Phase {
	if r == nil || len(r.Results) == 0 {
		return nil
	}
	for i, p := range r.Results[0].Phases {
		if p.Name == name {
			return &r.Results[0].Phases[i]
		}
	}
	return nil
}

// addMedian is the median ADD of a report, 0 if it has none.
func addMedian(r *cnibench.Report) float64 {
	if p := phase(r, "add"); p != nil && p.OK > 0 {
		return p.Latency.MedianMs
	}
	return 0
}

func status(ok bool) string {
	if ok {
		return Met
	}
	return Missed
}

// Evaluate judges every port run against issue 6's targets. It only reads
// res; a target without the numbers it needs is n/a.
func Evaluate(res *Results) []Target {
	ipam := addMedian(res.Baselines.IPAM)
	var out []Target
	for _, e := range res.Engines {
		for _, p := range e.Ports {
			wantK := res.Params.RecoverK
			if p.RecoverK > 0 {
				wantK = p.RecoverK // capped for memif; the goal names the size run
			}
			ts := []Target{evalCNIEntry(p, ipam), evalAdapter(p)}
			ts = append(ts, evalBurst(p)...)
			ts = append(ts, evalScale(p)...)
			ts = append(ts, evalRecover(p, wantK, e.Restart))
			for _, t := range ts {
				t.Engine, t.Port = e.Engine, p.Port
				out = append(out, t)
			}
		}
	}
	return out
}

func target(name, goal string) Target { return Target{Name: name, Goal: goal, Status: NoData} }

func evalCNIEntry(p PortRun, ipam float64) Target {
	t := target("cni-entry own work", "≤ 5 ms")
	t.How = "latency ADD median − adapter attach median (events) − host-local ADD median"
	add := addMedian(p.Latency)
	if add == 0 || p.AdapterAttach.N == 0 || ipam == 0 {
		return t
	}
	own := add - p.AdapterAttach.MedianMs - ipam
	t.Value = fmt.Sprintf("%.2f ms (%.2f − %.2f − %.2f)", own, add, p.AdapterAttach.MedianMs, ipam)
	t.Status = status(own <= 5)
	return t
}

func evalAdapter(p PortRun) Target {
	t := target("adapter overhead beyond vswitch", "≤ 1 ms")
	t.How = "adapter attach median − (vswitch create median − vswitch no-op median); an estimate. Probes: " + orDash(p.VswitchProbe)
	if p.AdapterAttach.N == 0 || p.VswitchAdd.N == 0 || p.VswitchNoop.N == 0 {
		return t
	}
	vswitch := max(p.VswitchAdd.MedianMs-p.VswitchNoop.MedianMs, 0)
	over := p.AdapterAttach.MedianMs - vswitch
	t.Value = fmt.Sprintf("%.2f ms (%.2f − %.2f)", over, p.AdapterAttach.MedianMs, vswitch)
	t.Status = status(over <= 1)
	return t
}

func evalBurst(p PortRun) []Target {
	all := target("burst: all succeed", "all ADDs ok")
	p99 := target("burst: p99 ≤ 10 × sequential median", "≤ 10×")
	rate := target("burst: attachments/s", "≥ 100/s")
	rate.How = "successful ADDs / wall time from release to the last one"
	if b := phase(p.Burst, "add"); b != nil {
		c := p.Burst.Params.Concurrency * max(p.Burst.Params.Rounds, 1)
		all.Value = fmt.Sprintf("%d of %d ok", b.OK, c)
		all.Status = status(b.OK == c && b.Failed == 0)
		rate.Value = fmt.Sprintf("%.1f/s", b.PerSecond)
		rate.Status = status(b.PerSecond >= 100)
		if seq := addMedian(p.Latency); seq > 0 && b.OK > 0 {
			p99.Value = fmt.Sprintf("%.1f× (p99 %.1f ms, sequential median %.1f ms)", b.Latency.P99Ms/seq, b.Latency.P99Ms, seq)
			p99.Status = status(b.Latency.P99Ms <= 10*seq)
		}
	}
	return []Target{all, p99, rate}
}

func evalScale(p PortRun) []Target {
	ratio := target("scale: ADD median at K ≤ 1.5 × at 0", "≤ 1.5×")
	ratio.How = "probe ADD medians (ADD+DEL cycles while the attachments are held)"
	rss := target("scale: adapter RSS", "≤ 64 MiB")
	rss.How = "max VmRSS of the adapter process over the samples"
	steps := scaleSteps(p)
	if steps == nil {
		return []Target{ratio, rss}
	}
	first, last := steps[0], steps[len(steps)-1]
	if first.Probe.N > 0 && last.Probe.N > 0 {
		r := last.Probe.MedianMs / first.Probe.MedianMs
		ratio.Value = fmt.Sprintf("%.2f× (%.1f ms at %d, %.1f ms at 0)", r, last.Probe.MedianMs, last.Attachments, first.Probe.MedianMs)
		ratio.Status = status(r <= 1.5)
	}
	if p.Scale.Failed > 0 {
		ratio.Value = strings.TrimPrefix(ratio.Value+fmt.Sprintf("; %d operations failed", p.Scale.Failed), "; ")
		ratio.Status = Missed
	}
	if most := maxRSSKiB(steps); most > 0 {
		rss.Value = fmt.Sprintf("%.1f MiB (max VmRSS, %d attachments)", float64(most)/1024, last.Attachments)
		rss.Status = status(most <= 64*1024)
	}
	return []Target{ratio, rss}
}

// scaleSteps are the scale run's steps, nil unless there are two to
// compare.
func scaleSteps(p PortRun) []cnibench.ScaleStep {
	if p.Scale == nil || len(p.Scale.Results) == 0 || len(p.Scale.Results[0].Scale) < 2 {
		return nil
	}
	return p.Scale.Results[0].Scale
}

// maxRSSKiB is the adapter's largest VmRSS over the steps.
func maxRSSKiB(steps []cnibench.ScaleStep) int64 {
	var most int64
	for _, s := range steps {
		most = max(most, s.RSSKiB)
	}
	return most
}

func evalRecover(p PortRun, wantK int, restart string) Target {
	t := target("recover after vswitch restart", fmt.Sprintf("≤ 5 s for %d", wantK))
	t.How = "from the start of the restart (" + orDash(restart) + ") until contracts check passes for every attachment"
	rc := recovery(p.Recover)
	switch {
	case rc == nil:
	case rc.Attachments == 0:
		t.Value, t.Status = "no attachments were added", Missed
	case rc.TimedOut || rc.Back < rc.Attachments:
		t.Value, t.Status = fmt.Sprintf("%d of %d back before the timeout", rc.Back, rc.Attachments), Missed
	default:
		t.Value = fmt.Sprintf("%.2f s for %d (restart itself %.2f s)", rc.AllBackMs/1000, rc.Attachments, rc.RestartCmdMs/1000)
		t.Status = status(rc.AllBackMs <= 5000 && rc.Attachments >= wantK)
	}
	return t
}

// WriteMarkdown writes the short summary: machine, one table per engine
// and port kind with the targets side by side, the modes' numbers, and
// the Go benchmarks.
func WriteMarkdown(w io.Writer, res *Results) error {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "# usrsp bench %s\n\n", res.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs (%s), kernel %s; %s; %s; %s; commit %s. Runtime %s.\n\n",
		m.Hostname, m.NProc, m.CPUModel, m.Kernel, m.OVS, m.DPDK, m.Go, m.GitCommit, time.Duration(res.RuntimeS*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(&b, "Sizes: latency N=%d, burst C=%d, scale K=%d (step %d), recover K=%d.\n",
		res.Params.LatencyN, res.Params.BurstC, res.Params.ScaleK, res.Params.Step, res.Params.RecoverK)
	if f := addMedian(res.Baselines.FakeAdapter); f > 0 {
		fmt.Fprintf(&b, "Baselines: userspace ADD with a fake adapter %.2f ms median; host-local alone %.2f ms median.\n", f, addMedian(res.Baselines.IPAM))
	}
	if len(res.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	writeOverview(&b, res)
	for _, e := range res.Engines {
		if e.Skipped != "" {
			fmt.Fprintf(&b, "\n## %s\n\n%s\n", e.Engine, e.Skipped)
			continue
		}
		for _, p := range e.Ports {
			fmt.Fprintf(&b, "\n## %s %s\n\n", e.Engine, p.Port)
			if e.Vswitch != "" {
				fmt.Fprintf(&b, "%s, adapter %s.", e.Vswitch, e.Adapter)
				if e.Load != "" {
					fmt.Fprintf(&b, " Load average (1 min) at the engine's start → end: %s.", e.Load)
				}
				b.WriteString("\n\n")
			}
			b.WriteString("| target | goal | measured | status |\n|---|---|---|---|\n")
			for _, t := range res.Targets {
				if t.Engine == e.Engine && t.Port == p.Port {
					fmt.Fprintf(&b, "| %s | %s | %s | **%s** |\n", t.Name, t.Goal, orDash(t.Value), t.Status)
				}
			}
			writeModes(&b, p)
		}
	}
	if len(res.GoBench) > 0 {
		b.WriteString("\n## Go benchmarks\n\n| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---|---|---|---|\n")
		for _, g := range res.GoBench {
			var extra []string
			for _, k := range slices.Sorted(maps.Keys(g.Metrics)) {
				extra = append(extra, fmt.Sprintf("%g %s", g.Metrics[k], k))
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.0f | %s |\n", g.Package, g.Name, g.NsPerOp, g.BytesPerOp, g.AllocsPerOp, strings.Join(extra, ", "))
		}
	}
	if len(res.Errors) > 0 {
		b.WriteString("\n## Errors\n\n")
		for _, e := range res.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	b.WriteString("\nHow each value is derived: see bench/README.md and the `how` field of each target in the JSON.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeModes(b *strings.Builder, p PortRun) {
	b.WriteString("\n| mode | phase | ok | failed | median ms | p95 | p99 | max | /s |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range []struct {
		name string
		r    *cnibench.Report
	}{{"latency", p.Latency}, {"burst", p.Burst}, {"scale", p.Scale}, {"recover", p.Recover}} {
		if m.r == nil || len(m.r.Results) == 0 {
			fmt.Fprintf(b, "| %s | – | | | | | | | |\n", m.name)
			continue
		}
		for _, ph := range m.r.Results[0].Phases {
			if ph.OK+ph.Failed == 0 {
				continue
			}
			rate := ""
			if ph.PerSecond > 0 {
				rate = fmt.Sprintf("%.1f", ph.PerSecond)
			}
			l := ph.Latency
			fmt.Fprintf(b, "| %s | %s | %d | %d | %.2f | %.2f | %.2f | %.2f | %s |\n", m.name, ph.Name, ph.OK, ph.Failed, l.MedianMs, l.P95Ms, l.P99Ms, l.MaxMs, rate)
		}
	}
	if p.Scale != nil && len(p.Scale.Results) > 0 && len(p.Scale.Results[0].Scale) > 0 {
		b.WriteString("\n| attachments | probe ADD median ms | window ADD median ms | adapter RSS MiB |\n|---|---|---|---|\n")
		for _, s := range p.Scale.Results[0].Scale {
			fmt.Fprintf(b, "| %d | %.2f | %.2f | %.1f |\n", s.Attachments, s.Probe.MedianMs, s.Window.MedianMs, float64(s.RSSKiB)/1024)
		}
	}
	if p.AdapterAttach.N > 0 {
		fmt.Fprintf(b, "\nAdapter attach (events, latency run): median %.2f ms, p95 %.2f ms. Vswitch alone: create median %.2f ms, no-op %.2f ms (%s).\n",
			p.AdapterAttach.MedianMs, p.AdapterAttach.P95Ms, p.VswitchAdd.MedianMs, p.VswitchNoop.MedianMs, orDash(p.VswitchProbe))
	}
	if rc := recovery(p.Recover); rc != nil {
		fmt.Fprintf(b, "\nRecover: %d attachments; the restart itself took %.2f s; all back at %.2f s (first %.2f s, median %.2f s); adapter replays after the restart: %s.\n",
			rc.Attachments, rc.RestartCmdMs/1000, rc.AllBackMs/1000, rc.PerAttachment.MinMs/1000, rc.PerAttachment.MedianMs/1000, replayText(p.Reconciled))
	}
}

// writeOverview is one line per engine and port kind with the numbers
// issue 9 asks for side by side.
func writeOverview(b *strings.Builder, res *Results) {
	b.WriteString("\n## Overview\n\n| engine | port | latency ADD / DEL median ms | burst ADD ok | burst /s | burst ADD p99 ms | scale ADD median at 0 → K ms | adapter RSS MiB | recover: all back s (restart itself) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, e := range res.Engines {
		if e.Skipped != "" {
			fmt.Fprintf(b, "| %s | – | skipped | | | | | | |\n", e.Engine)
			continue
		}
		for _, p := range e.Ports {
			lat := medianText(phase(p.Latency, "add")) + " / " + medianText(phase(p.Latency, "del"))
			ok, rate, p99 := "–", "–", "–"
			if a := phase(p.Burst, "add"); a != nil {
				ok = fmt.Sprintf("%d of %d", a.OK, a.OK+a.Failed)
				rate, p99 = fmt.Sprintf("%.1f", a.PerSecond), fmt.Sprintf("%.0f", a.Latency.P99Ms)
			}
			scale, rss := "–", "–"
			if steps := scaleSteps(p); steps != nil {
				first, last := steps[0], steps[len(steps)-1]
				scale = fmt.Sprintf("%.1f → %.1f (K=%d)", first.Probe.MedianMs, last.Probe.MedianMs, last.Attachments)
				rss = fmt.Sprintf("%.1f", float64(maxRSSKiB(steps))/1024)
			}
			rec := "–"
			if rc := recovery(p.Recover); rc != nil {
				if rc.Back == rc.Attachments && rc.Attachments > 0 {
					rec = fmt.Sprintf("%.2f for %d (%.2f)", rc.AllBackMs/1000, rc.Attachments, rc.RestartCmdMs/1000)
				} else {
					rec = fmt.Sprintf("%d of %d back", rc.Back, rc.Attachments)
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", e.Engine, p.Port, lat, ok, rate, p99, scale, rss, rec)
		}
	}
}

// medianText is a phase's median in ms, "–" without successes.
func medianText(p *cnibench.Phase) string {
	if p == nil || p.OK == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", p.Latency.MedianMs)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
