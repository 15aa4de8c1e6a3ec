package cnibench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Schema names the JSON layout; bump it when a field changes meaning.
const Schema = "usrsp.cnibench/v1"

// Report is one run of one mode: the --json output.
type Report struct {
	Schema  string    `json:"schema"`
	Mode    string    `json:"mode"`
	Config  string    `json:"config"`
	Network string    `json:"network"`
	Netns   string    `json:"netns"` // "real" or "none"
	Started time.Time `json:"started"`
	Host    Host      `json:"host"`
	Params  Params    `json:"params"`
	Results []Result  `json:"results"`
	// Ratios compare B with A (only with --vs).
	Ratios []Ratio `json:"ratios,omitempty"`
	// Failed counts failed operations over all results; non-zero makes
	// the exit status 1.
	Failed      int    `json:"failed"`
	Interrupted bool   `json:"interrupted,omitempty"`
	Error       string `json:"error,omitempty"` // why the run stopped early
	// Leftover counts attachments that cleanup could not DEL.
	Leftover int `json:"leftover,omitempty"`
}

// Host describes the machine, to tell runs apart.
type Host struct {
	Hostname string `json:"hostname"`
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel,omitempty"`
}

// Params are the mode's parameters as run.
type Params struct {
	N           int    `json:"n,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	Rounds      int    `json:"rounds,omitempty"`
	K           int    `json:"k,omitempty"`
	Step        int    `json:"step,omitempty"`
	Probes      int    `json:"probes,omitempty"`
	Warmup      int    `json:"warmup"`
	IfName      string `json:"ifName"`
}

// Result is one plugin's outcome.
type Result struct {
	Label   string      `json:"label"`  // A, B
	Binary  string      `json:"binary"` // the binary run, or the config's type
	Phases  []Phase     `json:"phases"`
	Scale   []ScaleStep `json:"scale,omitempty"`
	Recover *Recovery   `json:"recover,omitempty"`
}

// Phase is one kind of operation: add, del, probe-add, restart-cmd.
type Phase struct {
	Name      string    `json:"name"`
	OK        int       `json:"ok"`
	Failed    int       `json:"failed"`
	Latency   Summary   `json:"latency"`
	Histogram []Bucket  `json:"histogram"`
	WallMs    float64   `json:"wallMs,omitempty"`    // burst: first start to last finish, summed over rounds
	PerSecond float64   `json:"perSecond,omitempty"` // burst: OK / wall
	Failures  []Failure `json:"failures,omitempty"`
}

// Failure groups failed operations by CNI error code (0: the plugin gave
// no CNI error: it could not run, was killed, or timed out).
type Failure struct {
	Code    uint   `json:"code"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

func sortFailures(fs []Failure) {
	slices.SortFunc(fs, func(a, b Failure) int { return int(a.Code) - int(b.Code) })
}

// Ratio is B's statistic over A's for one phase.
type Ratio struct {
	Phase  string  `json:"phase"`
	Stat   string  `json:"stat"` // median, p95, p99, perSecond
	A      float64 `json:"a"`
	B      float64 `json:"b"`
	BOverA float64 `json:"bOverA"`
}

// Ratios compares b with a phase by phase: median, p95 and p99 latency,
// and throughput where there is one. A ratio above 1 means B is slower
// (or, for perSecond, faster).
func Ratios(a, b Result) []Ratio {
	var out []Ratio
	for _, pa := range a.Phases {
		i := slices.IndexFunc(b.Phases, func(p Phase) bool { return p.Name == pa.Name })
		if i < 0 || pa.OK == 0 || b.Phases[i].OK == 0 {
			continue
		}
		pb := b.Phases[i]
		add := func(stat string, x, y float64) {
			if x > 0 {
				out = append(out, Ratio{Phase: pa.Name, Stat: stat, A: x, B: y, BOverA: y / x})
			}
		}
		add("median", pa.Latency.MedianMs, pb.Latency.MedianMs)
		add("p95", pa.Latency.P95Ms, pb.Latency.P95Ms)
		add("p99", pa.Latency.P99Ms, pb.Latency.P99Ms)
		add("perSecond", pa.PerSecond, pb.PerSecond)
	}
	return out
}

// Finish fills Ratios and Failed from the results.
func (r *Report) Finish() {
	r.Failed = 0
	for _, res := range r.Results {
		for _, p := range res.Phases {
			r.Failed += p.Failed
		}
	}
	if len(r.Results) == 2 {
		r.Ratios = Ratios(r.Results[0], r.Results[1])
	}
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r as tables for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cnibench %s  network=%s  netns=%s  host=%s (%d cpus)  %s\n",
		r.Mode, r.Network, r.Netns, r.Host.Hostname, r.Host.CPUs, r.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "config %s; %s\n\n", r.Config, r.paramText())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "binary\tphase\tok\tfailed\tmin ms\tmedian\tp95\tp99\tmax\t/s\t")
	for _, res := range r.Results {
		for _, p := range res.Phases {
			if p.OK+p.Failed == 0 {
				continue
			}
			l := p.Latency
			rate := ""
			if p.PerSecond > 0 {
				rate = fmt.Sprintf("%.1f", p.PerSecond)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n",
				res.Label+" "+shortName(res.Binary), p.Name, p.OK, p.Failed, l.MinMs, l.MedianMs, l.P95Ms, l.P99Ms, l.MaxMs, rate)
		}
	}
	tw.Flush()
	if len(r.Ratios) > 0 {
		b.WriteString("\nB/A (above 1: B slower; perSecond: B faster)\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "phase\tstat\tA\tB\tB/A\t")
		for _, x := range r.Ratios {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.3f\t\n", x.Phase, x.Stat, x.A, x.B, x.BOverA)
		}
		tw.Flush()
	}
	for _, res := range r.Results {
		writeScale(&b, res)
		writeRecovery(&b, res)
		for _, p := range res.Phases {
			if len(p.Histogram) > 1 && (p.Name == "add" || p.Name == "del") {
				fmt.Fprintf(&b, "\n%s %s %s histogram (ms)\n", res.Label, shortName(res.Binary), p.Name)
				writeHistogram(&b, p.Histogram)
			}
		}
		for _, p := range res.Phases {
			for _, f := range p.Failures {
				fmt.Fprintf(&b, "\n%s %s: %d failed with CNI code %d, e.g.: %s", res.Label, p.Name, f.Count, f.Code, f.Example)
			}
		}
	}
	if r.Interrupted {
		b.WriteString("\ninterrupted: partial results\n")
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\nstopped: %s\n", r.Error)
	}
	if r.Leftover > 0 {
		fmt.Fprintf(&b, "\nWARNING: %d attachments could not be deleted\n", r.Leftover)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) paramText() string {
	p := r.Params
	var parts []string
	for _, kv := range []struct {
		k string
		v int
	}{{"n", p.N}, {"c", p.Concurrency}, {"rounds", p.Rounds}, {"k", p.K}, {"step", p.Step}, {"probes", p.Probes}, {"warmup", p.Warmup}} {
		if kv.v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", kv.k, kv.v))
		}
	}
	return strings.Join(parts, " ") + " ifname=" + p.IfName
}

func shortName(bin string) string {
	if i := strings.LastIndexByte(bin, '/'); i >= 0 {
		return bin[i+1:]
	}
	return bin
}

func writeScale(b *strings.Builder, res Result) {
	if len(res.Scale) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s %s scale\n", res.Label, shortName(res.Binary))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "attachments\tprobe median ms\tprobe max\twindow median\twindow p95\tRSS MiB\t")
	for _, s := range res.Scale {
		rss := "-"
		if s.RSSKiB > 0 {
			rss = fmt.Sprintf("%.1f", float64(s.RSSKiB)/1024)
		}
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", s.Attachments, s.Probe.MedianMs, s.Probe.MaxMs, s.Window.MedianMs, s.Window.P95Ms, rss)
	}
	tw.Flush()
}

func writeRecovery(b *strings.Builder, res Result) {
	rc := res.Recover
	if rc == nil {
		return
	}
	fmt.Fprintf(b, "\n%s %s recover: %d attachments, restart command %.0f ms, ", res.Label, shortName(res.Binary), rc.Attachments, rc.RestartCmdMs)
	switch {
	case rc.TimedOut:
		fmt.Fprintf(b, "only %d back before the timeout\n", rc.Back)
	case rc.Back == rc.Attachments:
		fmt.Fprintf(b, "all back after %.0f ms (per attachment: median %.0f, p95 %.0f ms)\n", rc.AllBackMs, rc.PerAttachment.MedianMs, rc.PerAttachment.P95Ms)
	default:
		fmt.Fprintf(b, "%d back\n", rc.Back)
	}
}

// writeHistogram draws one bar per bucket, scaled to the fullest one.
func writeHistogram(b *strings.Builder, hs []Bucket) {
	most := 0
	for _, h := range hs {
		most = max(most, h.Count)
	}
	for _, h := range hs {
		fmt.Fprintf(b, "  <= %8s %6d %s\n", fmt.Sprintf("%g", h.LeMs), h.Count, strings.Repeat("#", (h.Count*40+most-1)/most))
	}
}
