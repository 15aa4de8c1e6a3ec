package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/harness"
)

// VPPSummary is what the VPP part of the demo saw.
type VPPSummary struct {
	PingAB, PingBA int // vppctl ping replies of 5
	Events         int
}

// vppPod is a demo pod with its own VPP.
type vppPod struct {
	*harness.Pod
	vpp *harness.VPP
	ip  string
}

// runVPP is the VPP part: the old Userspace CNI README's vpp-memif-ping
// through our binaries. A host VPP and the vpp-adapter; two pods, each
// with its own VPP that only `pod-consumer apply --engine vpp` configures;
// vppctl ping between them through bridge domain 4 of the host VPP.
func runVPP(ctx context.Context, out *printer, binDir string) (sum *VPPSummary, err error) {
	out.printf("")
	h, events, closeNode, err := startNode(ctx, out, binDir, contracts.EngineVPP,
		"usrsp demo, VPP: a host VPP 25.10, NATS and the vpp-adapter; the old Userspace CNI README's vpp-memif-ping network (memif master in host bridge domain 4, slave in each pod's own VPP)",
		"tearing down the VPP node (VPPs stopped by pid, namespaces and files removed)")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, closeNode()) }()
	net, err := h.VPPMemifNetwork("memif-network", "4", "192.168.210.0/24")
	if err != nil {
		return nil, err
	}

	var ps []*vppPod
	for _, name := range []string{"pod-a", "pod-b"} {
		p, err := h.NewPod(ctx, name)
		if err != nil {
			return nil, err
		}
		vp := &vppPod{Pod: p}
		if err := step(out, fmt.Sprintf("CNI ADD %s %s (netns %s)", name, ifName, p.NetnsName), func() error {
			res, err := p.Add(ctx, net, ifName)
			if err == nil && len(res.IPs) > 0 && len(res.Interfaces) > 0 {
				out.printf("    %s: ip %s, memif socket %s", name, res.IPs[0].Address.String(), res.Interfaces[0].SocketPath)
			}
			return err
		}); err != nil {
			return nil, err
		}
		if err := step(out, "CNI CHECK "+name, func() error { return p.Check(ctx, net, ifName) }); err != nil {
			return nil, err
		}
		if vp.ip, err = p.IPv4(ifName); err != nil {
			return nil, err
		}
		if err := step(out, "starting a VPP in "+name+" (its netns, the pod directory mounted at the pod path)", func() error {
			vp.vpp, err = p.StartVPP(ctx)
			return err
		}); err != nil {
			return nil, err
		}
		if err := step(out, "pod-consumer apply --engine vpp in "+name, func() error {
			res, err := p.PodConsumer(ctx, "apply", "--engine", "vpp", "--vpp-api-socket", vp.vpp.APISock)
			out.printf("    %s", strings.TrimSpace(res))
			return err
		}); err != nil {
			return nil, err
		}
		ps = append(ps, vp)
	}
	ifs, err := h.VPP.Interfaces(ctx)
	if err != nil {
		return nil, err
	}
	out.printf("    host VPP interfaces (besides local0): %s; bridge domain 4 made by the adapter", strings.Join(ifs, ", "))

	sum = &VPPSummary{}
	if sum.PingAB, err = vppPing(ctx, out, ps[0], ps[1]); err != nil {
		return sum, err
	}
	if sum.PingBA, err = vppPing(ctx, out, ps[1], ps[0]); err != nil {
		return sum, err
	}
	for _, p := range ps {
		if err := step(out, "CNI DEL "+p.Name, func() error { return p.Del(ctx, net, ifName) }); err != nil {
			return sum, err
		}
	}
	if err := h.NC.Flush(); err != nil {
		return sum, err
	}
	sum.Events = events()
	return sum, step(out, "host VPP clean after DEL (no interface but local0, no bridge domain, no memif socket but id 0)", func() error {
		ifs, err := h.VPP.Interfaces(ctx)
		if err != nil {
			return err
		}
		bds, err := h.VPP.BridgeDomains(ctx)
		if err != nil {
			return err
		}
		socks, err := h.VPP.MemifSockets(ctx)
		if err != nil {
			return err
		}
		if len(ifs)+len(bds)+len(socks) > 0 {
			return fmt.Errorf("left on the host VPP: interfaces %v, bridge domains %v, memif sockets %v", ifs, bds, socks)
		}
		return nil
	})
}

// vppPing runs `vppctl ping <to> repeat 5` in from's VPP and prints the
// replies in one line. At least 4 of 5 must come back: the first may be
// lost to ARP, as in the old README's own sample.
func vppPing(ctx context.Context, out *printer, from, to *vppPod) (int, error) {
	var n int
	err := step(out, fmt.Sprintf("vppctl ping %s repeat 5 in %s's VPP", to.ip, from.Name), func() error {
		var res string
		var err error
		n, res, err = from.vpp.Ping(ctx, to.ip, 5)
		if err != nil {
			return err
		}
		var times []string
		for _, l := range strings.Split(res, "\n") {
			if i := strings.Index(l, "time="); i >= 0 && strings.Contains(l, "bytes from") {
				times = append(times, strings.TrimSpace(l[i+len("time="):]))
			}
			if strings.HasPrefix(strings.TrimSpace(l), "Statistics:") {
				out.printf("    %s (round trips: %s)", strings.TrimSpace(l), strings.Join(times, ", "))
			}
		}
		if n < 4 {
			return fmt.Errorf("%d of 5 replies:\n%s", n, res)
		}
		return nil
	})
	return n, err
}
