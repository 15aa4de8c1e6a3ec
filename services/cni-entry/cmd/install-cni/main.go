// Command install-cni puts the usrsp CNI binary into the host's CNI bin
// directory, atomically, and does nothing else. It is the entrypoint of the
// cni-installer image: a DaemonSet initContainer (it exits 0 once the file
// is in place) or, with --sleep, a container that then waits for SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"usrsp.dev/services/cni-entry/internal/cniinstall"
	"usrsp.dev/services/cni-entry/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `install-cni: copy the usrsp CNI binary into the host's CNI bin directory

Usage: install-cni [--src F] [--dest D] [--name N] [--sleep]

The copy is atomic: a temporary file in D, fsynced, renamed over D/N, so a
runtime executing D/N at that moment runs the old or the new binary, whole.
Flags:
`

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("install-cni", flag.ContinueOnError)
	src := fs.String("src", "/usr/local/bin/userspace", "the CNI binary to install")
	dest := fs.String("dest", envOr("CNI_BIN_DIR", "/host/opt/cni/bin"), "the host's CNI bin directory as mounted in the container (env CNI_BIN_DIR)")
	name := fs.String("name", "userspace", `file name in --dest: the "type" of the network configurations`)
	sleep := fs.Bool("sleep", false, "after installing, sleep until SIGTERM (a container rather than an initContainer)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "install-cni: %v\n\n", err)
		printUsage(stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "install-cni: unexpected argument %q\n\n", fs.Arg(0))
		printUsage(stderr)
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "install-cni %s (installs the usrsp CNI plugin %s)\n", version.Version, version.Version)
		return 0
	}
	if err := cniinstall.Install(*src, *dest, *name); err != nil {
		fmt.Fprintf(stderr, "install-cni: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "installed %s\n", filepath.Join(*dest, *name))
	if *sleep {
		<-ctx.Done()
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
