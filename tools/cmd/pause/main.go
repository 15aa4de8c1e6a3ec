// Command pause is the infra ("pause") container of the podman e2e test's
// pods: it holds the pod's namespaces and sleeps until SIGTERM or SIGINT.
// Built static (CGO_ENABLED=0) so its image can be FROM scratch.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
