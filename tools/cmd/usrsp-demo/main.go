// Command usrsp-demo is `make demo`: run as root after `make deps`, it
// shows a whole usrsp node at work on this machine and cleans up after
// itself (also on Ctrl-C). See tools/demo.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"usrsp.dev/tools/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, os.Stdout); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "usrsp-demo:", err)
		os.Exit(1)
	}
}
