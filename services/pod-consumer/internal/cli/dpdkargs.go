package cli

import (
	"context"
	"fmt"

	"usrsp.dev/services/pod-consumer/internal/dpdkargs"
)

func runDPDKArgs(_ context.Context, args []string, env Env) error {
	fs, c := newFlags("dpdk-args", env)
	ealOnly := fs.Bool("eal-only", false, "print only the EAL arguments, without \"-- --rxq=N --txq=N\"")
	ifs, err := c.parseDiscover(fs, args)
	if err != nil {
		return err
	}
	a, err := dpdkargs.Build(ifs)
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(env.Stdout, a)
	}
	_, err = fmt.Fprintln(env.Stdout, a.Line(*ealOnly))
	return err
}
