package cnibench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"usrsp.dev/contracts"
)

// Exit statuses of Run.
const (
	ExitOK          = 0
	ExitFailures    = 1 // some operations failed, or cleanup left attachments
	ExitUsage       = 2 // bad flags or setup failed; nothing measured
	ExitInterrupted = 130
)

const usage = `usage: cnibench <latency|burst|scale|recover> --config FILE [flags]

Drives a CNI plugin through libcni (as Multus does), one network namespace
per attachment, and reports min/median/p95/p99/max and a histogram.

  latency  N iterations of ADD then DEL, one attachment at a time
  burst    C concurrent ADDs, then C concurrent DELs (per round)
  scale    grow to K attachments, sampling ADD latency and adapter RSS every STEP
  recover  K attachments, run --restart-cmd, time until all are back (contracts check)

--vs BIN runs a second binary on the same config, interleaved (latency, burst).
Exit status: 0 all operations succeeded, 1 some failed, 2 usage, 130 interrupted.

flags:
`

type cliFlags struct {
	mode, config, bin, vs, vsConfig, pluginType, cniPath, netns, ifName, pluginStderr string
	json, progress                                                                    bool
	opTimeout, cleanupTimeout                                                         time.Duration
	warmup, n, c, rounds, k, step, probes, pid                                        int
	restartCmd, readyCmd, natsURL, node, engine                                       string
	recoverTimeout, poll, natsTimeout                                                 time.Duration
	parallel                                                                          int
}

func parseFlags(args []string, stderr io.Writer) (*cliFlags, error) {
	f := &cliFlags{}
	fs := flag.NewFlagSet("cnibench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&f.config, "config", "", "network config file, .conf or .conflist (required)")
	fs.StringVar(&f.bin, "bin", "", "CNI binary to run as the config's plugin type (default: the type found in --cni-path)")
	fs.StringVar(&f.vs, "vs", "", "second binary (B), run as the same plugin type on the same config, interleaved with A")
	fs.StringVar(&f.vsConfig, "vs-config", "", "network config for B (default: --config)")
	fs.StringVar(&f.pluginType, "type", "", "plugin type that --bin and --vs replace (default: the first plugin's type)")
	fs.StringVar(&f.cniPath, "cni-path", "/opt/cni/bin", "colon-separated directories with the other plugins (IPAM, chained)")
	fs.StringVar(&f.netns, "netns", string(NetnsAuto), "auto (real when root), real (ip netns add) or none (no namespace per attachment: the benchmark's own)")
	fs.StringVar(&f.ifName, "ifname", "net1", "CNI_IFNAME of every attachment")
	fs.StringVar(&f.pluginStderr, "plugin-stderr", "", "append the plugins' stderr to this file (default: discarded)")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.BoolVar(&f.progress, "progress", false, "draw a progress bar on stderr even when it is not a terminal")
	fs.DurationVar(&f.opTimeout, "op-timeout", time.Minute, "bound of one ADD or DEL")
	fs.DurationVar(&f.cleanupTimeout, "cleanup-timeout", 2*time.Minute, "bound of the final DEL of leftovers (also on Ctrl-C)")
	fs.IntVar(&f.warmup, "warmup", 3, "unrecorded ADD+DEL per binary before latency and burst")
	fs.IntVar(&f.n, "n", 100, "latency: iterations")
	fs.IntVar(&f.c, "c", 64, "burst: concurrent attachments")
	fs.IntVar(&f.rounds, "rounds", 1, "burst: rounds (A and B alternate per round)")
	fs.IntVar(&f.k, "k", 0, "scale, recover: attachments (default 1000 for scale, 100 for recover)")
	fs.IntVar(&f.step, "step", 100, "scale: sample every STEP attachments")
	fs.IntVar(&f.probes, "probes", 5, "scale: probe ADD+DEL cycles per sample")
	fs.IntVar(&f.pid, "pid", 0, "scale: adapter pid whose VmRSS is sampled")
	fs.StringVar(&f.restartCmd, "restart-cmd", "", "recover: shell command that restarts the vswitch (required)")
	fs.StringVar(&f.readyCmd, "ready-cmd", "", "recover: shell command polled until it exits 0, instead of checking every attachment")
	fs.DurationVar(&f.recoverTimeout, "recover-timeout", time.Minute, "recover: bound of the restart command, and then of the wait")
	fs.DurationVar(&f.poll, "poll", 20*time.Millisecond, "recover: pause between check passes")
	fs.IntVar(&f.parallel, "parallel", 8, "recover: concurrent ADDs/DELs/checks")
	fs.StringVar(&f.natsURL, "nats-url", "", "recover: NATS URL (default: the config's nats.url, else nats://127.0.0.1:4222)")
	fs.StringVar(&f.node, "node", "", "recover: node name (default: the config's nodeName, else the host name)")
	fs.StringVar(&f.engine, "engine", "", "recover: vpp or ovs-dpdk (default: the config's host.engine)")
	fs.DurationVar(&f.natsTimeout, "nats-timeout", 5*time.Second, "recover: bound of the NATS dial and of each request")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return nil, errors.New("a mode is required")
	}
	f.mode = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, f.check()
}

func (f *cliFlags) check() error {
	switch f.mode {
	case "latency", "burst":
	case "scale", "recover":
		if f.vs != "" || f.vsConfig != "" {
			return fmt.Errorf("--vs applies to latency and burst; run %s once per binary", f.mode)
		}
	default:
		return fmt.Errorf("mode %q is not latency, burst, scale or recover", f.mode)
	}
	if f.k == 0 {
		f.k = map[string]int{"scale": 1000, "recover": 100}[f.mode]
	}
	switch {
	case f.config == "":
		return errors.New("--config is required")
	case f.n < 1 || f.c < 1 || f.rounds < 1 || f.step < 1 || f.parallel < 1 || f.probes < 0 || f.warmup < 0:
		return errors.New("-n, -c, --rounds, --step and --parallel must be at least 1; --probes and --warmup not negative")
	case (f.mode == "scale" || f.mode == "recover") && f.k < 1:
		return errors.New("-k must be at least 1")
	case f.mode == "recover" && f.restartCmd == "":
		return errors.New("recover needs --restart-cmd")
	}
	return nil
}

// Run is the cnibench command: it parses args, runs one mode, prints the
// report on stdout and returns the exit status. Cancelling ctx (Ctrl-C)
// stops the mode; what was added is then deleted within --cleanup-timeout.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "cnibench:", err)
		}
		return ExitUsage
	}
	workDir, err := os.MkdirTemp("", "cnibench-")
	if err != nil {
		fmt.Fprintln(stderr, "cnibench:", err)
		return ExitUsage
	}
	defer os.RemoveAll(workDir)

	var pluginErr io.Writer = io.Discard
	if f.pluginStderr != "" {
		file, err := os.OpenFile(f.pluginStderr, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "cnibench: --plugin-stderr:", err)
			return ExitUsage
		}
		defer file.Close()
		// Concurrent plugins append to it directly (O_APPEND): an *os.File
		// needs no lock of ours.
		pluginErr = file
	}
	rep, bench, setupErr := setup(f, workDir, pluginErr, stderr)
	if setupErr != nil {
		fmt.Fprintln(stderr, "cnibench:", setupErr)
		return ExitUsage
	}
	runErr := runMode(ctx, f, bench, rep, stderr)
	left, cleanErr := bench.Cleanup(f.cleanupTimeout)
	if cleanErr != nil {
		fmt.Fprintln(stderr, "cnibench: cleanup:", cleanErr)
	}
	rep.Leftover = left
	rep.Interrupted = ctx.Err() != nil
	if runErr != nil && !rep.Interrupted {
		rep.Error = runErr.Error()
	}
	rep.Finish()
	if f.json {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "cnibench:", err)
		return ExitFailures
	case rep.Interrupted:
		return ExitInterrupted
	case rep.Failed > 0 || rep.Leftover > 0 || rep.Error != "":
		return ExitFailures
	}
	return ExitOK
}

// setup loads the configs, installs the binaries and builds the Bench and
// the report skeleton; it runs no plugin.
func setup(f *cliFlags, workDir string, pluginErr, stderr io.Writer) (*Report, *Bench, error) {
	conf, err := readConfig(f.config)
	if err != nil {
		return nil, nil, err
	}
	pluginType := f.pluginType
	if pluginType == "" {
		pluginType = conf.MainType()
	}
	cniPath := filepath.SplitList(f.cniPath)
	rep := &Report{Schema: Schema, Mode: f.mode, Config: f.config, Network: conf.List.Name, Started: time.Now().UTC(),
		Host: hostInfo(), Params: f.params()}
	a, err := NewTarget(conf, TargetOptions{Label: "A", Binary: f.bin, PluginType: pluginType, CNIPath: cniPath, WorkDir: workDir, Stderr: pluginErr})
	if err != nil {
		return nil, nil, err
	}
	plugins := []Plugin{a}
	rep.Results = []Result{{Label: "A", Binary: binaryName(f.bin, pluginType)}}
	if f.vs != "" || f.vsConfig != "" {
		bConf := conf
		if f.vsConfig != "" {
			if bConf, err = readConfig(f.vsConfig); err != nil {
				return nil, nil, err
			}
		}
		b, err := NewTarget(bConf, TargetOptions{Label: "B", Binary: f.vs, PluginType: pluginType, CNIPath: cniPath, WorkDir: workDir, Stderr: pluginErr})
		if err != nil {
			return nil, nil, err
		}
		plugins = append(plugins, b)
		rep.Results = append(rep.Results, Result{Label: "B", Binary: binaryName(f.vs, pluginType)})
	}
	var progress *Progress
	if f.progress || isTerminal(os.Stderr) {
		progress = NewProgress(stderr)
	}
	bench, err := New(plugins, Options{IfName: f.ifName, Netns: NetnsMode(f.netns),
		OpTimeout: f.opTimeout, Warmup: f.warmup, Progress: progress})
	if err != nil {
		return nil, nil, err
	}
	rep.Netns = "none"
	if bench.RealNetns() {
		rep.Netns = "real"
	}
	return rep, bench, nil
}

func runMode(ctx context.Context, f *cliFlags, b *Bench, rep *Report, stderr io.Writer) error {
	var results []Result
	var err error
	switch f.mode {
	case "latency":
		results, err = b.Latency(ctx, f.n)
	case "burst":
		results, err = b.Burst(ctx, f.c, f.rounds)
	case "scale":
		var r Result
		r, err = b.Scale(ctx, ScaleOptions{K: f.k, Step: f.step, Probes: f.probes, PID: f.pid})
		results = []Result{r}
	case "recover":
		var r Result
		r, err = runRecover(ctx, f, b, stderr)
		results = []Result{r}
	}
	for i := range results {
		results[i].Binary = rep.Results[i].Binary
	}
	rep.Results = results
	return err
}

func runRecover(ctx context.Context, f *cliFlags, b *Bench, stderr io.Writer) (Result, error) {
	conf, err := readConfig(f.config)
	if err != nil {
		return Result{}, err
	}
	o := RecoverOptions{K: f.k, RestartCmd: f.restartCmd, ReadyCmd: f.readyCmd, Timeout: f.recoverTimeout,
		Poll: f.poll, Parallel: f.parallel, CmdOutput: stderr}
	if f.readyCmd == "" {
		d := userspaceDefaults(conf)
		url, node, engine := orDefault(f.natsURL, d.natsURL), orDefault(f.node, d.node), orDefault(f.engine, d.engine)
		if !contracts.Engine(engine).Valid() {
			return Result{}, fmt.Errorf("--engine %q is not vpp or ovs-dpdk (the config's host.engine is %q)", engine, d.engine)
		}
		nc, err := contracts.Connect(contracts.ConnectOptions{URL: url, Timeout: f.natsTimeout, Name: "cnibench"})
		if err != nil {
			return Result{}, err
		}
		defer nc.Close()
		o.Checker = &NATSChecker{Client: contracts.NewClient(nc, node, f.natsTimeout), Engine: contracts.Engine(engine), Network: conf.List.Name}
	}
	return b.Recover(ctx, o)
}

type userspaceConfDefaults struct{ natsURL, node, engine string }

// userspaceDefaults reads nats.url, nodeName and host.engine from a
// userspace plugin config, with cni-entry's defaults.
func userspaceDefaults(c *NetworkConfig) userspaceConfDefaults {
	d := userspaceConfDefaults{natsURL: "nats://127.0.0.1:4222"}
	if n, ok := c.Plugin["nats"].(map[string]any); ok {
		d.natsURL = orDefault(str(n["url"]), d.natsURL)
	}
	d.node = str(c.Plugin["nodeName"])
	if d.node == "" {
		d.node, _ = os.Hostname()
	}
	if h, ok := c.Plugin["host"].(map[string]any); ok {
		d.engine = str(h["engine"])
	}
	return d
}

func str(v any) string { s, _ := v.(string); return s }

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func readConfig(path string) (*NetworkConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	c, err := LoadNetworkConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func binaryName(bin, pluginType string) string {
	if bin != "" {
		return bin
	}
	return pluginType
}

func (f *cliFlags) params() Params {
	p := Params{Warmup: f.warmup, IfName: f.ifName}
	switch f.mode {
	case "latency":
		p.N = f.n
	case "burst":
		p.Concurrency, p.Rounds = f.c, f.rounds
	case "scale":
		p.K, p.Step, p.Probes, p.Warmup = f.k, f.step, f.probes, 0
	case "recover":
		p.K, p.Concurrency, p.Warmup = f.k, f.parallel, 0
	}
	return p
}

func hostInfo() Host {
	h := Host{CPUs: runtime.NumCPU()}
	h.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	return h
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
