package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/core"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/services/pod-consumer/internal/vppapply"
)

func runApply(ctx context.Context, args []string, env Env) error {
	fs, c := newFlags("apply", env)
	engine := fs.String("engine", "", "the pod's dataplane: vpp")
	sock := fs.String("vpp-api-socket", socketclient.DefaultSocketName, "the pod VPP's binary API socket")
	timeout := fs.Duration("timeout", 30*time.Second, "wait this long for every link to come up (0: do not wait)")
	watch := fs.Bool("watch", false, "keep running and re-apply whenever VPP restarts")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *engine != string(contracts.EngineVPP) {
		return usagef("--engine %q: only vpp is supported (a DPDK app takes `pod-consumer dpdk-args`)", *engine)
	}
	log, ifs, err := c.loggerAndInterfaces(env)
	if err != nil {
		return err
	}
	if len(ifs) == 0 {
		return contracts.Errorf(contracts.CodeNotFound, "no userspace interfaces in %s", c.dir)
	}
	log = log.With().Str("engine", *engine).Logger()

	apply := func(ctx context.Context, vc *vpp.Client) error {
		a := &vppapply.Applier{VPP: vc, Log: log, LinkTimeout: *timeout, PollInterval: 200 * time.Millisecond}
		res, err := a.Apply(ctx, ifs)
		if perr := printApply(env, c.json, res); perr != nil {
			return perr
		}
		return err
	}
	newAdapter := func() adapter.VppAPI { return socketclient.NewVppClient(*sock) }
	if !*watch {
		conn, err := core.Connect(newAdapter())
		if err != nil {
			return contracts.Errorf(contracts.CodeTryAgainLater, "connect to VPP at %s: %v", *sock, err)
		}
		defer conn.Disconnect()
		return apply(ctx, vpp.NewClient(conn))
	}
	vppapply.Watch(newAdapter, apply, func(err error) { log.Warn().Err(err).Msg("will reconnect to VPP and re-apply") }).Run(ctx)
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
