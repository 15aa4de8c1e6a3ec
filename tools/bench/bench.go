// Package bench is `make bench`: for each engine it brings up a private
// node with tools/harness (OVS-DPDK or a host VPP, NATS and the engine's
// adapter as its own process), runs cnibench's latency, burst, scale and
// recover modes for each port kind (OVS: vhost-user-client, memif; VPP:
// memif, vhost-user-server), runs the Go benchmarks of issue 6, judges the
// numbers against the targets and writes
// bench/results/<date>.json and <date>.md. See bench/README.md.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/tools/cnibench"
	"usrsp.dev/tools/harness"
)

// Port kinds. vhost-user-client and -server name the vswitch's side: OVS
// is benchmarked as dpdkvhostuserclient (its recommended mode), VPP as
// server (its default).
const (
	PortVhost       = "vhost-user-client"
	PortVhostServer = "vhost-user-server"
	PortMemif       = "memif"
)

// vppSkipped is what the results say about VPP on a machine without it;
// why is harness.VPPMissing's answer.
func vppSkipped(why string) string {
	return "VPP not measured: " + why + " (the root Makefile sets USRSP_VPP_BIN when ../shared/vpp exists); skipped"
}

// enginePorts are the port kinds each engine is measured with.
var enginePorts = map[contracts.Engine][]string{
	contracts.EngineOVSDPDK: {PortVhost, PortMemif},
	contracts.EngineVPP:     {PortMemif, PortVhostServer},
}

// Options of Run. DefaultOptions are issue 6's sizes.
type Options struct {
	OutDir  string // where <date>.json and <date>.md go
	RepoDir string // default: the directory holding go.work above the working directory
	Params
	// Engines to measure, in order; vpp is skipped (and the results say
	// so) without USRSP_VPP_BIN.
	Engines []contracts.Engine
	// Ports are the port kinds to run; each engine runs those of its
	// enginePorts that are listed.
	Ports []string
	// MemifMax caps burst, scale and recover for memif on OVS: every memif
	// port is a DPDK ethdev, and Debian's DPDK 22.11 has RTE_MAX_ETHPORTS 32.
	MemifMax int
	SkipGo   bool      // no Go benchmarks
	Log      io.Writer // progress lines
	Progress bool      // cnibench's progress bars on Log (a terminal)
	// KeepLogsDir, if set, receives a copy of the harness's logs (adapter,
	// plugins, vswitch) and a /metrics snapshot before teardown, one
	// subdirectory per engine.
	KeepLogsDir string
}

// DefaultOptions are the sizes issue 6 asks for, on both engines (the
// harness takes VPP from USRSP_VPP_BIN and USRSP_VPP_PLUGIN_PATH).
func DefaultOptions() Options {
	return Options{OutDir: "bench/results", Engines: []contracts.Engine{contracts.EngineOVSDPDK, contracts.EngineVPP},
		Ports: []string{PortVhost, PortMemif, PortVhostServer}, MemifMax: 30,
		Params: Params{LatencyN: 50, BurstC: 64, ScaleK: 1000, Step: 100, RecoverK: 1000, ProbesN: 20}}
}

// Run measures and writes the results files; it returns the results even
// when a step failed (the failures are in Results.Errors and the error).
func Run(ctx context.Context, o Options) (*Results, error) {
	start := time.Now()
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	if o.Log == nil {
		logf = func(string, ...any) {}
	}
	repo := o.RepoDir
	if repo == "" {
		var err error
		if repo, err = harness.FindRepo(); err != nil {
			return nil, err
		}
	}
	for _, p := range o.Ports {
		if p != PortVhost && p != PortVhostServer && p != PortMemif {
			return nil, fmt.Errorf("port kind %q is not %s, %s or %s", p, PortVhost, PortVhostServer, PortMemif)
		}
	}
	for _, e := range o.Engines {
		if _, ok := enginePorts[e]; !ok {
			return nil, fmt.Errorf("engine %q is not %s or %s", e, contracts.EngineOVSDPDK, contracts.EngineVPP)
		}
	}
	res := &Results{Schema: Schema, Started: start.UTC(), Params: o.Params, Machine: machineInfo(ctx, repo, os.Getenv(harness.EnvVPPBin))}
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
			res.Errors = append(res.Errors, err.Error())
			logf("!!! %v", err)
		}
	}

	baselines := true // measured once, on the first engine's node
	for _, e := range o.Engines {
		if ctx.Err() != nil {
			break
		}
		run, err := runEngine(ctx, o, repo, e, res, baselines, logf)
		if run.Skipped == "" {
			baselines = false
		} else {
			logf("==> %s: %s", e, run.Skipped)
		}
		res.Engines = append(res.Engines, run)
		fail(err)
	}
	if !o.SkipGo && ctx.Err() == nil {
		gb, gerrs := runGoBenches(ctx, repo, logf)
		res.GoBench = gb
		for _, e := range gerrs {
			fail(e)
		}
	}
	res.Targets = Evaluate(res)
	res.RuntimeS = time.Since(start).Seconds()
	if ctx.Err() != nil {
		// Partial numbers must not replace a day's complete results.
		logf("interrupted: nothing written to %s", o.OutDir)
		return res, errors.Join(append(errs, ctx.Err())...)
	}
	fail(writeResults(o.OutDir, res))
	return res, errors.Join(errs...)
}

// Files are <date>.json and <date>.md; a second run on the same day
// replaces them.
func writeResults(dir string, res *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, res.Started.Format("2006-01-02"))
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(base + ".md")
	if err != nil {
		return err
	}
	if err := WriteMarkdown(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// node is one engine's private node (vswitch, NATS, adapter) under
// measurement.
type node struct {
	h            *harness.Harness
	vs           vswitch
	engine       contracts.Engine
	o            Options
	logf         func(string, ...any)
	pluginStderr io.Writer
	attach       *attachTimes
	reconciled   *reconciledEvents
}

// runEngine brings up engine's node, measures the baselines (if asked)
// and every port kind, and tears the node down.
func runEngine(ctx context.Context, o Options, repo string, engine contracts.Engine, res *Results, baselines bool,
	logf func(string, ...any)) (run EngineRun, err error) {
	run = EngineRun{Engine: string(engine)}
	load := loadAvg()
	defer func() {
		if run.Skipped == "" {
			run.Load = load + " → " + loadAvg()
		}
	}()
	var ports []string
	for _, p := range enginePorts[engine] {
		if slices.Contains(o.Ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		run.Skipped = fmt.Sprintf("none of the port kinds asked for (%s) is one %s is measured with (%s); skipped",
			strings.Join(o.Ports, ", "), engine, strings.Join(enginePorts[engine], ", "))
		return run, nil
	}
	var vs vswitch
	switch engine {
	case contracts.EngineOVSDPDK:
		vs, run.Restart = ovsSwitch{memifMax: o.MemifMax}, ovsRestartText
	case contracts.EngineVPP:
		if why := harness.VPPMissing(); why != "" {
			run.Skipped = vppSkipped(why)
			return run, nil
		}
		vs, run.Restart = vppSwitch{}, vppRestartText
	}
	cfg := harness.Config{Logf: logf, RepoDir: repo, Node: "usrsp-bench", AdapterLogLevel: "info", Engine: engine}
	h, err := harness.New(ctx, cfg)
	if err != nil {
		return run, fmt.Errorf("%s harness: %w", engine, err)
	}
	defer func() {
		if o.KeepLogsDir != "" {
			dir := filepath.Join(o.KeepLogsDir, string(engine))
			if kerr := keepLogs(h, vs, dir); kerr != nil {
				logf("!!! keeping logs: %v", kerr)
			} else {
				logf("==> logs kept in %s", dir)
			}
		}
		start := time.Now()
		cerr := h.Close()
		logf("==> tearing down %s node (vswitch, NATS, adapter) ... (%s)", engine, time.Since(start).Round(time.Millisecond))
		err = errors.Join(err, cerr)
	}()
	if st, serr := h.Client().Status(ctx, engine); serr == nil {
		run.Vswitch, run.Adapter = st.Vswitch, st.Version
	}

	sock := filepath.Join(h.Dir, "restart.sock")
	restart, err := restartCommand(sock)
	if err != nil {
		return run, err
	}
	n := &node{h: h, vs: vs, engine: engine, o: o, logf: logf}
	srv, err := listenRestart(ctx, sock, func(ctx context.Context) error {
		n.reconciled.restarting()
		return vs.restart(ctx, h)
	})
	if err != nil {
		return run, err
	}
	defer srv.Close()
	stderrFile, err := os.OpenFile(filepath.Join(h.LogDir(), "plugins.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return run, err
	}
	defer stderrFile.Close()
	n.pluginStderr = stderrFile
	if n.attach, err = collectAttachTimes(h.NC, h.Node(), engine); err != nil {
		return run, err
	}
	defer n.attach.Close()
	if n.reconciled, err = collectReconciled(h.NC, h.Node(), engine); err != nil {
		return run, err
	}
	defer n.reconciled.Close()

	var errs []error
	if baselines {
		res.Baselines, err = n.baselines(ctx, ports[0])
		errs = append(errs, err)
	}
	for i, port := range ports {
		if ctx.Err() != nil {
			break
		}
		pr, err := n.port(ctx, port, i, restart)
		run.Ports = append(run.Ports, pr)
		errs = append(errs, err)
	}
	return run, errors.Join(errs...)
}

// baselines measure host-local alone and userspace against a fake adapter.
func (n *node) baselines(ctx context.Context, port string) (Baselines, error) {
	var b Baselines
	ipamConf, err := json.Marshal(map[string]any{"cniVersion": harness.CNIVersion, "name": "bench-ipam", "plugins": []any{
		map[string]any{"type": "host-local", "ipam": map[string]any{"type": "host-local", "subnet": "10.84.0.0/24", "dataDir": n.h.IPAMDir()}},
	}})
	if err != nil {
		return b, err
	}
	b.IPAM, err = n.latency(ctx, "baseline host-local", ipamConf, cnibench.NetnsNone)
	if err != nil {
		return b, err
	}

	const fakeNode = "usrsp-bench-fake"
	fake := contractstest.NewFakeAdapter(n.engine)
	svc, err := fake.Serve(n.h.NC, fakeNode)
	if err != nil {
		return b, err
	}
	defer func() { _ = svc.Stop() }()
	net, err := n.vs.network(n.h, "bench-fake", port, 9)
	if err != nil {
		return b, err
	}
	conf, err := benchConfig(net, fakeNode)
	if err != nil {
		return b, err
	}
	b.FakeAdapter, err = n.latency(ctx, "baseline userspace + fake adapter", conf, cnibench.NetnsNone)
	return b, err
}

func (n *node) latency(ctx context.Context, what string, conf []byte, netns cnibench.NetnsMode) (*cnibench.Report, error) {
	return n.mode(ctx, what, "latency", conf, netns, cnibench.Params{N: n.o.LatencyN, Warmup: 3, IfName: "net1"},
		func(b *cnibench.Bench) ([]cnibench.Result, error) { return b.Latency(ctx, n.o.LatencyN) })
}

// port runs the vswitch probes and the four modes on one port kind.
func (n *node) port(ctx context.Context, port string, i int, restartCmd string) (PortRun, error) {
	pr := PortRun{Port: port, Network: "bench-" + port, VswitchProbe: n.vs.probeText(port)}
	what := string(n.engine) + " " + port
	net, err := n.vs.network(n.h, pr.Network, port, i)
	if err != nil {
		return pr, err
	}
	conf, err := benchConfig(net, n.h.Node())
	if err != nil {
		return pr, err
	}
	burstC, scaleK, recoverK := n.o.BurstC, n.o.ScaleK, n.o.RecoverK
	if most := n.vs.limit(port); most > 0 {
		burstC, scaleK, recoverK = min(burstC, most), min(scaleK, most), min(recoverK, most)
		if burstC < n.o.BurstC || scaleK < n.o.ScaleK || recoverK < n.o.RecoverK {
			n.logf("==> [%s] burst, scale and recover capped at %d ports: this vswitch has room for no more", what, most)
		}
	}
	pr.ScaleK, pr.RecoverK = scaleK, recoverK
	var errs []error
	step := func(name string, fn func() error) {
		if ctx.Err() == nil {
			if err := fn(); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", what, name, err))
			}
		}
	}
	step("vswitch probes", func() (err error) {
		start := time.Now()
		pr.VswitchAdd, pr.VswitchNoop, err = n.vs.probes(ctx, n.h, port, n.o.ProbesN)
		n.logf("==> [%s] vswitch probes x%d ... create median %.2f ms, no-op %.2f ms (%s)", what, n.o.ProbesN,
			pr.VswitchAdd.MedianMs, pr.VswitchNoop.MedianMs, time.Since(start).Round(time.Second))
		return err
	})
	step("latency", func() (err error) {
		n.attach.Start(pr.Network)
		pr.Latency, err = n.latency(ctx, what, conf, cnibench.NetnsAuto)
		pr.AdapterAttach = n.attach.Stop()
		n.logf("    [%s] adapter attach (events): n=%d median %.2f ms", what, pr.AdapterAttach.N, pr.AdapterAttach.MedianMs)
		return err
	})
	step("burst", func() (err error) {
		pr.Burst, err = n.mode(ctx, what, "burst", conf, cnibench.NetnsAuto, cnibench.Params{Concurrency: burstC, Rounds: 1, Warmup: 3, IfName: "net1"},
			func(b *cnibench.Bench) ([]cnibench.Result, error) { return b.Burst(ctx, burstC, 1) })
		return err
	})
	step("scale", func() (err error) {
		pid := n.h.Adapter.PID()
		pr.Scale, err = n.mode(ctx, what, "scale", conf, cnibench.NetnsAuto, cnibench.Params{K: scaleK, Step: n.o.Step, Probes: 5, IfName: "net1"},
			func(b *cnibench.Bench) ([]cnibench.Result, error) {
				r, err := b.Scale(ctx, cnibench.ScaleOptions{K: scaleK, Step: n.o.Step, Probes: 5, PID: pid})
				return []cnibench.Result{r}, err
			})
		return err
	})
	step("recover", func() (err error) {
		checker := n.vs.checker(n.h, port, pr.Network)
		pr.Recover, err = n.mode(ctx, what, "recover", conf, cnibench.NetnsAuto, cnibench.Params{K: recoverK, Concurrency: 8, IfName: "net1"},
			func(b *cnibench.Bench) ([]cnibench.Result, error) {
				r, err := b.Recover(ctx, cnibench.RecoverOptions{K: recoverK, RestartCmd: restartCmd, Checker: checker,
					Timeout: 3 * time.Minute, Poll: 20 * time.Millisecond, Parallel: 8, CmdOutput: n.o.Log})
				return []cnibench.Result{r}, err
			})
		pr.Reconciled = n.reconciled.take()
		if rc := recovery(pr.Recover); rc != nil {
			n.logf("    [%s] recover: %d attachments, restart %.2f s, all back %.2f s, back %d, timed out %v; adapter replays: %s",
				what, rc.Attachments, rc.RestartCmdMs/1000, rc.AllBackMs/1000, rc.Back, rc.TimedOut, replayText(pr.Reconciled))
		}
		return err
	})
	return pr, errors.Join(errs...)
}

func recovery(r *cnibench.Report) *cnibench.Recovery {
	if r == nil || len(r.Results) == 0 {
		return nil
	}
	return r.Results[0].Recover
}

// mode runs one cnibench mode on a fresh Bench and returns its report as
// `cnibench <mode> --json` would print it.
func (n *node) mode(ctx context.Context, what, mode string, confJSON []byte, netns cnibench.NetnsMode, params cnibench.Params,
	fn func(*cnibench.Bench) ([]cnibench.Result, error)) (*cnibench.Report, error) {
	start := time.Now()
	n.logf("==> [%s] %s %s ...", what, mode, paramText(params))
	conf, err := cnibench.LoadNetworkConfig(confJSON)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(n.h.Dir, "cb")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	target, err := cnibench.NewTarget(conf, cnibench.TargetOptions{Label: "A", PluginType: conf.MainType(),
		CNIPath: []string{n.h.Bin}, WorkDir: work, Stderr: n.pluginStderr})
	if err != nil {
		return nil, err
	}
	var progress *cnibench.Progress
	if n.o.Progress {
		progress = cnibench.NewProgress(n.o.Log)
	}
	b, err := cnibench.New([]cnibench.Plugin{target}, cnibench.Options{IfName: params.IfName, Netns: netns,
		OpTimeout: time.Minute, Warmup: params.Warmup, Progress: progress})
	if err != nil {
		return nil, err
	}
	rep := &cnibench.Report{Schema: cnibench.Schema, Mode: mode, Config: "harness network " + conf.List.Name, Network: conf.List.Name,
		Netns: "none", Started: time.Now().UTC(), Host: cnibench.Host{CPUs: runtime.NumCPU()}, Params: params}
	if b.RealNetns() {
		rep.Netns = "real"
	}
	rep.Host.Hostname, _ = os.Hostname()
	results, runErr := fn(b)
	left, cleanErr := b.Cleanup(2 * time.Minute)
	for i := range results {
		results[i].Binary = conf.MainType()
	}
	rep.Results, rep.Leftover, rep.Interrupted = results, left, ctx.Err() != nil
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	rep.Finish()
	n.logf("    [%s] %s done (%s): %s", what, mode, time.Since(start).Round(time.Second), oneLine(rep))
	if runErr == nil && rep.Failed > 0 {
		runErr = fmt.Errorf("%s: %d operations failed", mode, rep.Failed)
	}
	return rep, errors.Join(runErr, cleanErr)
}

func paramText(p cnibench.Params) string {
	switch {
	case p.N > 0:
		return fmt.Sprintf("n=%d", p.N)
	case p.Step > 0:
		return fmt.Sprintf("k=%d step=%d", p.K, p.Step)
	case p.K > 0:
		return fmt.Sprintf("k=%d parallel=%d", p.K, p.Concurrency)
	default:
		return fmt.Sprintf("c=%d", p.Concurrency)
	}
}

// oneLine is a progress line's summary of a report: ok/failed and the
// ADD median of each phase.
func oneLine(r *cnibench.Report) string {
	s := ""
	for _, res := range r.Results {
		for _, p := range res.Phases {
			if p.OK+p.Failed > 0 {
				s += fmt.Sprintf("%s %d ok %d failed median %.2f ms p99 %.2f ms; ", p.Name, p.OK, p.Failed, p.Latency.MedianMs, p.Latency.P99Ms)
			}
		}
	}
	if r.Error != "" {
		s += "stopped: " + r.Error
	}
	return s
}

// benchConfig is the harness's network config for node as users run it:
// info-level plugin logging (debug lines would be cni-entry work users do
// not pay) and cni-entry's default NATS timeout, 3 s (the harness's 2 s
// suits tests; under a burst the vpp-adapter, which runs VPP calls one at
// a time, can need more than 2 s for the last of 64).
func benchConfig(net *harness.Network, node string) ([]byte, error) {
	var conf map[string]any
	if err := json.Unmarshal(net.List.Bytes, &conf); err != nil {
		return nil, err
	}
	plugins, _ := conf["plugins"].([]any)
	if len(plugins) != 1 {
		return nil, fmt.Errorf("harness network %s: want one plugin, have %d", net.Name, len(plugins))
	}
	p := plugins[0].(map[string]any)
	p["logLevel"], p["nodeName"] = "info", node
	if nats, ok := p["nats"].(map[string]any); ok {
		nats["timeout"] = "3s"
	}
	return json.Marshal(conf)
}

// Rerender reads a results JSON, judges it again with this Evaluate and
// rewrites it and its markdown (after a change to the evaluation, no
// re-measuring).
func Rerender(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if res.Schema == schemaV1 {
		if err := migrateV1(b, &res); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	res.Targets = Evaluate(&res)
	return &res, writeResults(filepath.Dir(path), &res)
}

const schemaV1 = "usrsp.bench/v1"

// migrateV1 fills what v1 files (OVS only) named differently.
func migrateV1(b []byte, res *Results) error {
	var v1 struct {
		Engines []struct {
			Ports []struct {
				VsctlAddPort cnibench.Summary `json:"vsctlAddPort"`
				VsctlNoop    cnibench.Summary `json:"vsctlNoop"`
			} `json:"ports"`
		} `json:"engines"`
	}
	if err := json.Unmarshal(b, &v1); err != nil {
		return err
	}
	for i := range res.Engines {
		e := &res.Engines[i]
		if e.Engine == string(contracts.EngineOVSDPDK) && e.Restart == "" {
			e.Restart = ovsRestartText
		}
		for j := range e.Ports {
			p := &e.Ports[j]
			p.VswitchAdd, p.VswitchNoop = v1.Engines[i].Ports[j].VsctlAddPort, v1.Engines[i].Ports[j].VsctlNoop
			p.VswitchProbe = ovsSwitch{}.probeText(p.Port)
		}
	}
	res.Schema = Schema
	return nil
}
