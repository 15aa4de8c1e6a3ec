// Command pod-consumer runs in a pod and makes the userspace interfaces
// usrsp attached to it usable: see services/pod-consumer/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"usrsp.dev/services/pod-consumer/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
