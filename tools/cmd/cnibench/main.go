// Command cnibench measures CNI plugins through libcni: latency, burst,
// scale and recover. See tools/cnibench/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"usrsp.dev/tools/cnibench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal cnibench cleans up; a second one kills it.
	go func() { <-ctx.Done(); stop() }()
	os.Exit(cnibench.Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
