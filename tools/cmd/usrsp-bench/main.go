// Command usrsp-bench is `make bench`: run as root after `make deps`, it
// measures private usrsp nodes (OVS-DPDK, NATS, ovs-adapter; and, with
// USRSP_VPP_BIN set, a host VPP, NATS, vpp-adapter) with cnibench plus the
// Go benchmarks and writes bench/results/<date>.json and .md. Everything it starts is stopped by pid, also on Ctrl-C (a second
// Ctrl-C kills it at once). See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/bench"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == bench.RestartSubcommand {
		// cnibench recover's --restart-cmd, talking to the running usrsp-bench.
		if err := bench.RequestRestart(os.Args[2], 2*time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "usrsp-bench "+bench.RestartSubcommand+":", err)
			os.Exit(1)
		}
		return
	}
	o := bench.DefaultOptions()
	ports := strings.Join(o.Ports, ",")
	var engineNames []string
	for _, e := range o.Engines {
		engineNames = append(engineNames, string(e))
	}
	engines := strings.Join(engineNames, ",")
	flag.StringVar(&o.OutDir, "out", o.OutDir, "directory for <date>.json and <date>.md")
	flag.IntVar(&o.LatencyN, "latency-n", o.LatencyN, "latency: sequential ADD+DEL cycles")
	flag.IntVar(&o.BurstC, "burst-c", o.BurstC, "burst: concurrent ADDs")
	flag.IntVar(&o.ScaleK, "scale-k", o.ScaleK, "scale: attachments to grow to")
	flag.IntVar(&o.Step, "scale-step", o.Step, "scale: sample every STEP attachments")
	flag.IntVar(&o.RecoverK, "recover-k", o.RecoverK, "recover: attachments held across the vswitch restart")
	flag.IntVar(&o.ProbesN, "vswitch-probes", o.ProbesN, "vswitch create-port samples (ovs-vsctl add-port, vppctl) per port kind")
	flag.IntVar(&o.MemifMax, "memif-max", o.MemifMax, "cap of burst, scale and recover for memif ports on OVS (DPDK ethdev limit); 0: none")
	flag.StringVar(&ports, "ports", ports, "port kinds, comma-separated: vhost-user-client (OVS), memif (both), vhost-user-server (VPP)")
	flag.StringVar(&engines, "engines", engines, "engines, comma-separated, in order: ovs-dpdk, vpp (vpp needs USRSP_VPP_BIN)")
	flag.BoolVar(&o.SkipGo, "skip-go", false, "skip the Go benchmarks")
	flag.StringVar(&o.KeepLogsDir, "keep-logs", "", "copy the adapters', plugins' and vswitches' logs and /metrics here (one directory per engine) before teardown")
	rerender := flag.String("rerender", "", "re-judge an existing results JSON and rewrite it and its .md; measures nothing")
	flag.Parse()
	if *rerender != "" {
		res, err := bench.Rerender(*rerender)
		if err != nil {
			fmt.Fprintln(os.Stderr, "usrsp-bench:", err)
			os.Exit(1)
		}
		_ = bench.WriteMarkdown(os.Stdout, res)
		return
	}
	o.Ports = strings.Split(ports, ",")
	o.Engines = nil
	for _, e := range strings.Split(engines, ",") {
		o.Engines = append(o.Engines, contracts.Engine(e))
	}
	o.Log = os.Stderr
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		o.Progress = true
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal everything is cleaned up; a second one kills.
	go func() { <-ctx.Done(); stop() }()
	res, err := bench.Run(ctx, o)
	if res != nil {
		_ = bench.WriteMarkdown(os.Stdout, res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "usrsp-bench:", err)
		os.Exit(1)
	}
}
