package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/core"

	"usrsp.dev/contracts"
	"usrsp.dev/services/pod-consumer/internal/vppapply"
)

func runApply(ctx context.Context, args []string, env Env) error {
	fs, c := newFlags("apply", env)
	engine := fs.String("engine", "", "the pod's dataplane: vpp")
	sock := fs.String("vpp-api-socket", socketclient.DefaultSocketName, "the pod VPP's binary API socket")
	timeout := fs.Duration("timeout", 30*time.Second, "wait this long for every link to come up (0: do not wait)")
	watch := fs.Bool("watch", false, "keep running and re-apply whenever VPP restarts")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *engine != string(contracts.EngineVPP) {
		return usagef("--engine %q: only vpp is supported (a DPDK app takes `pod-consumer dpdk-args`)", *engine)
	}
	log, err := c.logger(env)
	if err != nil {
		return err
	}
	ifs, err := c.discover()
	if err != nil {
		return err
	}
	if len(ifs) == 0 {
		return contracts.Errorf(contracts.CodeNotFound, "no userspace interfaces in %s", c.dir)
	}
	log = log.With().Str("engine", *engine).Logger()

	apply := func(ctx context.Context, conn api.Connection) error {
		a := &vppapply.Applier{API: vppapply.NewAPI(conn), Log: log, LinkTimeout: *timeout, PollInterval: 200 * time.Millisecond}
		res, err := a.Apply(ctx, ifs)
		if perr := printApply(env, c.json, res); perr != nil {
			return perr
		}
		return err
	}
	dial := func() (api.Connection, func(), error) {
		conn, err := core.Connect(socketclient.NewVppClient(*sock))
		if err != nil {
			return nil, nil, contracts.Errorf(contracts.CodeTryAgainLater, "connect to VPP at %s: %v", *sock, err)
		}
		return conn, conn.Disconnect, nil
	}
	if !*watch {
		conn, closeConn, err := dial()
		if err != nil {
			return err
		}
		defer closeConn()
		return apply(ctx, conn)
	}
	w := &vppapply.Watch{Dial: dial, Apply: apply,
		OnError:    func(err error) { log.Warn().Err(err).Msg("will reconnect to VPP and re-apply") },
		MinBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second,
		ProbeInterval: 2 * time.Second, ProbeTimeout: 2 * time.Second}
	w.Run(ctx)
	return nil
}

func printApply(env Env, asJSON bool, res []vppapply.Result) error {
	if asJSON {
		return writeJSON(env.Stdout, res)
	}
	for _, r := range res {
		what := "unchanged"
		if len(r.Changes) > 0 {
			what = strings.Join(r.Changes, ", ")
		}
		link := "link not checked"
		if r.LinkUp {
			link = "link up"
		}
		if _, err := fmt.Fprintf(env.Stdout, "%s: %s (sw_if_index %d): %s; %s\n", r.IfName, r.VPPName, r.SwIfIndex, what, link); err != nil {
			return err
		}
	}
	return nil
}
