package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/memif"
	"usrsp.dev/services/pod-consumer/internal/discovery"
	"usrsp.dev/services/pod-consumer/internal/probe"
)

func runProbe(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "serve" && args[0] != "ping") {
		return usagef("want `probe serve` or `probe ping <ip>`")
	}
	verb := args[0]
	fs, c := newFlags("probe "+verb, env)
	ifName := fs.String("if", "", "the pod interface to use (default: the first memif)")
	ipFlag := fs.String("ip", "", "own address as CIDR (default: the first IPv4 of the IPAM result)")
	macFlag := fs.String("mac", "", "own MAC (default: the pod data's, else a locally administered one)")
	wait := fs.Duration("wait", 30*time.Second, "wait this long for the memif to connect")
	duration := fs.Duration("duration", 0, "serve: stop after this long (0: until SIGINT/SIGTERM)")
	count := fs.Int("c", 3, "ping: echo requests to send")
	interval := fs.Duration("i", time.Second, "ping: interval between requests")
	timeout := fs.Duration("W", 2*time.Second, "ping: wait this long for each reply (and for ARP)")
	size := fs.Int("s", 56, "ping: ICMP payload bytes")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	var dst netip.Addr
	switch {
	case verb == "ping" && len(pos) != 1:
		return usagef("want `probe ping <ip>`")
	case verb == "ping":
		if dst, err = netip.ParseAddr(pos[0]); err != nil || !dst.Is4() {
			return usagef("%q is not an IPv4 address", pos[0])
		}
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	}
	log, ifs, err := c.loggerAndInterfaces(env)
	if err != nil {
		return err
	}
	i, err := pick(ifs, *ifName, func(i discovery.Interface) bool {
		return i.Data != nil && i.Data.Interface.IfType == contracts.IfTypeMemif
	}, "memif with pod data")
	if err != nil {
		return err
	}
	if i.Data == nil {
		return contracts.Errorf(contracts.CodeNotFound, "%s: known only from the network-status annotation; the probe needs its pod data file", i.Name)
	}
	cfg, err := endpointConfig(i.Data, *ipFlag, *macFlag)
	if err != nil {
		return err
	}
	log = log.With().Str("container_id", i.Data.ContainerID).Str("ifname", i.Name).Logger()

	ifc, closeMemif, err := openMemif(ctx, i.Data, *wait, log)
	if err != nil {
		return err
	}
	defer closeMemif()
	ep, err := probe.New(probe.MemifPort{Ifc: ifc}, cfg)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- ep.Run(runCtx) }()

	if verb == "serve" {
		return serve(ctx, env, c.json, i, ep, *duration, runErr)
	}
	return ping(ctx, env, c.json, i, ep, dst, probe.PingOptions{Count: *count, Interval: *interval, Timeout: *timeout, Size: *size}, stop, runErr)
}

// endpointConfig is the probe's address: --ip, else the first IPv4 of the
// IPAM result (with its gateway); MAC: --mac, the pod data's, or the
// one contracts derives for the attachment (what cni-entry reports).
func endpointConfig(d *contracts.PodData, ipFlag, macFlag string) (probe.Config, error) {
	var cfg probe.Config
	if ipFlag != "" {
		p, err := netip.ParsePrefix(ipFlag)
		if err != nil || !p.Addr().Is4() {
			return cfg, usagef("--ip %q is not an IPv4 CIDR address", ipFlag)
		}
		cfg.Addr = p
	} else if d.IPAM != nil {
		for _, ip := range d.IPAM.IPs {
			if p, err := netip.ParsePrefix(ip.Address); err == nil && p.Addr().Is4() {
				cfg.Addr = p
				cfg.Gateway, _ = netip.ParseAddr(ip.Gateway)
				break
			}
		}
	}
	if !cfg.Addr.IsValid() {
		return cfg, contracts.Errorf(contracts.CodeInvalidConfig, "%s: the IPAM result has no IPv4 address; pass --ip", d.IfName)
	}
	mac := macFlag
	if mac == "" {
		mac = d.Interface.MAC
	}
	if mac == "" { // pod data written before cni-entry always gave a MAC
		mac = contracts.ContainerMAC(contracts.AttachmentKey{ContainerID: d.ContainerID, IfName: d.IfName}, "")
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return cfg, contracts.Errorf(contracts.CodeInvalidConfig, "MAC %q is not an Ethernet address", mac)
	}
	cfg.MAC = hw
	return cfg, nil
}

// openMemif opens the pod's end of the memif and waits until it connects.
// A client keeps reconnecting in the background until closed, so a
// restarted host side is picked up again. The returned func closes it all.
func openMemif(ctx context.Context, d *contracts.PodData, wait time.Duration, log zerolog.Logger) (*memif.Interface, func(), error) {
	cfg, err := probe.MemifConfig(d.Interface, "pod-consumer/"+d.IfName)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d.IfName, err)
	}
	ifc, err := memif.New(cfg)
	if err != nil {
		return nil, nil, contracts.Errorf(contracts.CodeIO, "%s: memif on %s: %v", d.IfName, cfg.SocketPath, err)
	}
	bg, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if cfg.Role == memif.RoleClient {
		go func() { defer close(done); keepConnected(bg, ifc, log) }()
	} else {
		close(done)
	}
	closeAll := func() {
		cancel()
		<-done
		ifc.Close()
	}
	wctx, wcancel := context.WithTimeout(ctx, wait)
	defer wcancel()
	if err := ifc.WaitUp(wctx); err != nil {
		closeAll()
		return nil, nil, contracts.Errorf(contracts.CodeTryAgainLater, "%s: memif %s id %d on %s did not connect within %s (last error: %v)",
			d.IfName, cfg.Role, cfg.ID, cfg.SocketPath, wait, lastErr(ifc, err))
	}
	log.Info().Str("peer", ifc.PeerName()).Msg("memif connected")
	return ifc, closeAll, nil
}

func lastErr(ifc *memif.Interface, err error) error {
	if e := ifc.Err(); e != nil {
		return e
	}
	return err
}

// keepConnected (re)connects a client until ctx ends.
func keepConnected(ctx context.Context, ifc *memif.Interface, log zerolog.Logger) {
	const retry = 200 * time.Millisecond
	for ctx.Err() == nil {
		err := ifc.Connect(ctx)
		switch {
		case errors.Is(err, memif.ErrClosed):
			return
		case err == nil:
			if down := ifc.WaitDown(ctx); down != nil && ctx.Err() == nil {
				log.Warn().Err(down).Msg("memif disconnected; reconnecting")
			}
		case ctx.Err() == nil:
			log.Debug().Err(err).Msg("memif connect failed; retrying")
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func describeMemif(i discovery.Interface) string {
	m := i.Data.Interface.Memif
	return fmt.Sprintf("memif %s id %d %s", m.Role, m.ID, i.Data.Interface.SocketPath)
}

// serve answers until ctx ends, duration passes or the port fails.
func serve(ctx context.Context, env Env, asJSON bool, i discovery.Interface, ep *probe.Endpoint, duration time.Duration, runErr <-chan error) error {
	cfg := ep.Config()
	if !asJSON {
		fmt.Fprintf(env.Stdout, "%s: answering ARP and ping for %s (%s) on %s\n", i.Name, cfg.Addr.Addr(), cfg.MAC, describeMemif(i))
	}
	var timeout <-chan time.Time
	if duration > 0 {
		t := time.NewTimer(duration)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case <-ctx.Done():
	case <-timeout:
	case err = <-runErr:
	}
	st := ep.Stats()
	if asJSON {
		if jerr := writeJSON(env.Stdout, map[string]any{"ifName": i.Name, "ip": cfg.Addr.String(), "mac": cfg.MAC.String(), "stats": st}); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintf(env.Stdout, "%s: answered %d ARP requests and %d echo requests\n", i.Name, st.ARPAnswered, st.EchoAnswered)
	}
	return err
}

// ping prints like ping(8): one line per reply, then statistics. It fails
// (exit code 1) unless a reply came back.
func ping(ctx context.Context, env Env, asJSON bool, i discovery.Interface, ep *probe.Endpoint, dst netip.Addr,
	o probe.PingOptions, stop func(), runErr <-chan error) error {
	cfg := ep.Config()
	if !asJSON {
		fmt.Fprintf(env.Stdout, "PING %s from %s %s (%s): %d data bytes\n", dst, cfg.Addr.Addr(), i.Name, describeMemif(i), o.Size)
	}
	s, err := ep.Ping(ctx, dst, o, func(r probe.Reply) {
		if !asJSON {
			fmt.Fprintf(env.Stdout, "%d bytes from %s: icmp_seq=%d ttl=%d time=%s ms\n", r.Bytes, r.From, r.Seq, r.TTL, ms(r.RTT))
		}
	})
	stop()
	if rerr := <-runErr; rerr != nil && err == nil {
		err = rerr
	}
	if asJSON {
		out := struct {
			IfName string `json:"ifName"`
			probe.Summary
			Error string `json:"error,omitempty"`
		}{IfName: i.Name, Summary: s}
		if err != nil {
			out.Error = err.Error()
		}
		if jerr := writeJSON(env.Stdout, out); jerr != nil {
			return jerr
		}
	} else if s.Transmitted > 0 {
		fmt.Fprintf(env.Stdout, "--- %s ping statistics ---\n%d packets transmitted, %d received, %.0f%% packet loss\n",
			dst, s.Transmitted, s.Received, s.LossPercent)
		if s.Received > 0 {
			fmt.Fprintf(env.Stdout, "rtt min/avg/max = %s/%s/%s ms\n", ms(s.Min), ms(s.Avg), ms(s.Max))
		}
	}
	switch {
	case errors.Is(err, probe.ErrNoReplies):
		return errSilent // the statistics said it
	case err != nil && asJSON:
		return errSilent
	}
	return err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }
