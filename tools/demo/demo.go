// Package demo is `make demo`: it brings up a whole usrsp node on this
// machine (private OVS-DPDK, NATS, ovs-adapter) with tools/harness,
// attaches two pods over vhost-user and two over memif through the real
// CNI plugin, shows packets flowing between them with the counters of
// every hop, the adapter's events as `nats sub` would show them, a
// pod-consumer probe ping, and tears everything down. Then, when a VPP is
// there (USRSP_VPP_BIN), the same with a host VPP and the vpp-adapter: two
// pods each running their own VPP, configured by `pod-consumer apply`,
// pinging each other through the host VPP's bridge domain (vpp.go).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/harness"
)

const ifName = "net1"

// printer serializes lines from the demo and the event subscription.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// Summary is what the OVS-DPDK part of the demo saw.
type Summary struct {
	Vhost, Memif harness.Traffic
	PingReplies  int
	Events       int
}

// Run runs the demo, printing to w: the OVS-DPDK part, then the VPP part
// when USRSP_VPP_BIN names a VPP (else one line on how to get it). Cancel
// ctx (Ctrl-C) to stop early; everything is cleaned up either way.
func Run(ctx context.Context, w io.Writer) (err error) {
	start := time.Now()
	out := &printer{w: w}
	// One build for both parts.
	binDir, err := os.MkdirTemp("", "usrsp-demo-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	if err := step(out, "building "+harness.BinaryNames(), func() error {
		return harness.Build(ctx, "", binDir)
	}); err != nil {
		return err
	}
	sum, err := runOVS(ctx, out, binDir)
	if err != nil {
		return err
	}
	var vsum *VPPSummary
	if r := harness.VPPMissing(); r != "" {
		out.printf("")
		out.printf("VPP part skipped (%s): install VPP 25.10 from FD.io's packages (packagecloud.io/fdio/release: vpp, vpp-plugin-core), then run `USRSP_VPP_BIN=/usr/bin/vpp USRSP_VPP_PLUGIN_PATH=/usr/lib/x86_64-linux-gnu/vpp_plugins make demo`", r)
	} else if vsum, err = runVPP(ctx, out, binDir); err != nil {
		return err
	}
	out.printf("")
	out.printf("summary (%s):", time.Since(start).Round(100*time.Millisecond))
	out.printf("  OVS-DPDK vhost-user: %s", sum.Vhost)
	out.printf("  OVS-DPDK memif:      %s", sum.Memif)
	out.printf("  OVS-DPDK probe ping between the memif pods: %d/5 replies", sum.PingReplies)
	out.printf("  OVS-DPDK: %d adapter events on %s; no OVS port left after DEL", sum.Events, contracts.AllEventsSubject)
	if vsum != nil {
		out.printf("  VPP: vppctl ping pod-a → pod-b %d/5, pod-b → pod-a %d/5 replies (pod VPPs configured by pod-consumer apply)", vsum.PingAB, vsum.PingBA)
		out.printf("  VPP: %d adapter events; nothing left on the host VPP after DEL", vsum.Events)
	}
	return nil
}

// runOVS is the OVS-DPDK part: vhost-user and memif pods with testpmd
// traffic and a probe ping.
func runOVS(ctx context.Context, out *printer, binDir string) (sum Summary, err error) {
	h, events, closeNode, err := startNode(ctx, out, binDir, "",
		"usrsp demo: a node with a private OVS-DPDK, NATS and the ovs-adapter; pods attached by the userspace CNI plugin through libcni",
		"tearing down (processes stopped by pid, namespaces and files removed)")
	if err != nil {
		return sum, err
	}
	defer func() { err = errors.Join(err, closeNode()) }()

	vnet, err := h.VhostUserNetwork("vhost-net", "br-vhost", "10.71.0.0/24")
	if err != nil {
		return sum, err
	}
	if sum.Vhost, err = trafficBetweenPods(ctx, h, out, vnet, "vhost-user (OVS dpdkvhostuserclient, pod app = virtio_user server)", nil); err != nil {
		return sum, err
	}
	mnet, err := h.MemifNetwork("memif-net", "br-memif", "10.72.0.0/24")
	if err != nil {
		return sum, err
	}
	if sum.Memif, err = trafficBetweenPods(ctx, h, out, mnet, "memif (OVS net_memif server, pod = memif client)", func(a, b *harness.Pod) error {
		n, err := probePing(ctx, out, a, b)
		sum.PingReplies = n
		return err
	}); err != nil {
		return sum, err
	}
	if err := h.NC.Flush(); err != nil { // the last events before the summary
		return sum, err
	}
	sum.Events = events()
	owned, err := h.OwnedPorts(ctx)
	if err != nil {
		return sum, err
	}
	if len(owned) > 0 {
		return sum, fmt.Errorf("OVS ports left after DEL: %v", owned)
	}
	return sum, nil
}

// startNode prints banner, starts a node of engine ("" for OVS-DPDK) with
// the binaries in binDir and prints its adapter's events; closeNode stops
// both, showing teardown as a step.
func startNode(ctx context.Context, out *printer, binDir string, engine contracts.Engine, banner, teardown string) (h *harness.Harness, events func() int, closeNode func() error, err error) {
	out.printf("%s", banner)
	h, err = harness.New(ctx, harness.Config{Logf: out.printf, Node: "demo-node", AdapterLogLevel: "info", BinDir: binDir, Engine: engine})
	if err != nil {
		return nil, nil, nil, err
	}
	events, stop, err := subscribeEvents(h, out)
	if err != nil {
		return nil, nil, nil, errors.Join(err, step(out, teardown, h.Close))
	}
	return h, events, func() error {
		stop()
		return step(out, teardown, h.Close)
	}, nil
}

// subscribeEvents prints every adapter event of h's NATS as it arrives;
// count says how many came.
func subscribeEvents(h *harness.Harness, out *printer) (count func() int, stop func(), err error) {
	var events atomic.Int64
	sub, err := h.NC.Subscribe(contracts.AllEventsSubject, func(m *nats.Msg) {
		ev, err := contracts.DecodeEvent(m.Data)
		if err != nil {
			out.printf("    [nats] %s: undecodable event: %v", m.Subject, err)
			return
		}
		events.Add(1)
		out.printf("    [nats] %s  %s", m.Subject, describe(ev))
	})
	if err != nil {
		return nil, nil, err
	}
	out.printf("==> subscribed to %q (what `nats sub '%s'` shows)", contracts.AllEventsSubject, contracts.AllEventsSubject)
	return func() int { return int(events.Load()) }, func() { _ = sub.Unsubscribe() }, nil
}

// trafficBetweenPods attaches two pods to net, shows what a pod sees, runs
// testpmd txonly → rxonly between them, calls extra (if any) and detaches.
func trafficBetweenPods(ctx context.Context, h *harness.Harness, out *printer, net *harness.Network, what string, extra func(a, b *harness.Pod) error) (harness.Traffic, error) {
	out.printf("")
	out.printf("--- %s, network %s", what, net.Name)
	var ps []*harness.Pod
	for _, name := range []string{"pod-a", "pod-b"} {
		p, err := h.NewPod(ctx, name)
		if err != nil {
			return harness.Traffic{}, err
		}
		if err := step(out, fmt.Sprintf("CNI ADD %s %s (netns %s)", name, ifName, p.NetnsName), func() error {
			res, err := p.Add(ctx, net, ifName)
			if err == nil && len(res.IPs) > 0 && len(res.Interfaces) > 0 {
				port, _ := h.PortOf(ctx, p.ContainerID, ifName)
				out.printf("    %s: ip %s, OVS port %s, socket %s", name, res.IPs[0].Address.String(), port, res.Interfaces[0].SocketPath)
			}
			return err
		}); err != nil {
			return harness.Traffic{}, err
		}
		if err := step(out, "CNI CHECK "+name, func() error { return p.Check(ctx, net, ifName) }); err != nil {
			return harness.Traffic{}, err
		}
		ps = append(ps, p)
	}
	list, err := ps[0].PodConsumer(ctx, "list")
	if err != nil {
		return harness.Traffic{}, err
	}
	out.printf("    `pod-consumer list` in pod-a: %s", strings.TrimSpace(list))
	args, err := ps[0].DPDKArgs(ctx)
	if err != nil {
		return harness.Traffic{}, err
	}
	out.printf("    `pod-consumer dpdk-args` in pod-a: %s %s", strings.Join(args.EAL, " "), strings.Join(args.App, " "))

	var tr harness.Traffic
	if err := step(out, "testpmd txonly in pod-a → rxonly in pod-b for 1s (EAL args from pod-consumer dpdk-args)", func() error {
		tr, err = h.RunTraffic(ctx, ps[0], ps[1], ifName, time.Second)
		return err
	}); err != nil {
		return tr, err
	}
	out.printf("    %s", tr)
	if tr.Receiver.RXPackets == 0 || tr.Receiver.RXPackets != tr.ReceiverOVS.TXPackets || tr.Sender.TXPackets != tr.SenderOVS.RXPackets {
		return tr, fmt.Errorf("counters do not add up: %s", tr)
	}
	out.printf("    every packet accounted for: OVS drops on pod-b's port are the rxonly app (sharing CPU 0 with the sender) not keeping up")
	if extra != nil {
		if err := extra(ps[0], ps[1]); err != nil {
			return tr, err
		}
	}
	for _, p := range ps {
		if err := step(out, "CNI DEL "+p.Name, func() error { return p.Del(ctx, net, ifName) }); err != nil {
			return tr, err
		}
	}
	return tr, nil
}

// probePing runs `pod-consumer probe serve` in a and `probe ping` of a's
// address in b, and returns the number of replies.
func probePing(ctx context.Context, out *printer, a, b *harness.Pod) (int, error) {
	ip, err := a.IPv4(ifName)
	if err != nil {
		return 0, err
	}
	var replies int
	err = step(out, fmt.Sprintf("pod-consumer probe serve in %s, probe ping %s -c 5 in %s", a.Name, ip, b.Name), func() error {
		serve, err := a.StartPodConsumer(ctx, "probe", "serve")
		if err != nil {
			return err
		}
		defer func() { _ = serve.Stop(syscall.SIGTERM) }()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := serve.WaitOutput(wctx, "answering ARP and ping"); err != nil {
			return fmt.Errorf("probe serve: %w\n%s", err, serve.Output())
		}
		res, err := b.PodConsumer(ctx, "probe", "ping", ip, "-c", "5", "-i", "100ms", "-W", "2s")
		for _, l := range strings.Split(strings.TrimSpace(res), "\n") {
			out.printf("    %s", l)
		}
		replies = strings.Count(res, "bytes from "+ip)
		return err
	})
	return replies, err
}

// step prints "==> what ... ok (duration)" around fn.
func step(out *printer, what string, fn func() error) error {
	start := time.Now()
	err := fn()
	d := time.Since(start).Round(time.Millisecond)
	if err != nil {
		out.printf("==> %s ... FAILED (%s)", what, d)
		return fmt.Errorf("%s: %w", what, err)
	}
	out.printf("==> %s ... ok (%s)", what, d)
	return nil
}

// describe is one event for people.
func describe(ev *contracts.Event) string {
	var b strings.Builder
	b.WriteString(string(ev.Kind))
	if ev.Key != nil {
		fmt.Fprintf(&b, " %.12s/%s", ev.Key.ContainerID, ev.Key.IfName)
	}
	if ev.Network != "" {
		fmt.Fprintf(&b, " network=%s", ev.Network)
	}
	if ev.Message != "" {
		fmt.Fprintf(&b, " %q", ev.Message)
	}
	if ev.Duration > 0 {
		fmt.Fprintf(&b, " (%s)", ev.Duration.Round(100*time.Microsecond))
	}
	return b.String()
}
