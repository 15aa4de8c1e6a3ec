// Command userspace is the usrsp CNI plugin binary, installed as
// "userspace" in the CNI bin directory.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/plugin"
	"usrsp.dev/services/cni-entry/version"
)

func main() {
	// Runtimes exec the plugin with CNI_COMMAND set and no arguments; only
	// a person (or the image smoke test) passes --version or --help.
	if os.Getenv("CNI_COMMAND") == "" && len(os.Args) > 1 {
		os.Exit(runFlags(os.Args[1:], os.Stdout, os.Stderr))
	}
	p := plugin.New(os.Stdout, os.Stderr)
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status},
		cniversion.PluginSupports(plugin.SupportedVersions...), "userspace "+version.Version+": "+plugin.About)
}

const usage = `userspace: the usrsp CNI plugin (%s)

A container runtime or Multus runs it: CNI_COMMAND (ADD, DEL, CHECK, GC,
STATUS, VERSION) and the other CNI_* variables in the environment, the
network configuration ("type": "userspace") on stdin. It asks the node's
adapter over NATS (usrsp.%s.<node>.<engine>.*) to attach the interface.
Install it into the host's CNI bin directory with the cni-installer image.

Flags (only without CNI_COMMAND):
  --version   print the version and exit
  --help      print this help and exit
`

// runFlags handles a command line given by a person; it returns the exit
// code.
func runFlags(args []string, stdout, stderr io.Writer) int {
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintf(stdout, "userspace %s (contracts API %s; CNI spec %s)\n",
			version.Version, contracts.APIVersion, strings.Join(plugin.SupportedVersions, ", "))
		return 0
	case "--help", "-help", "-h", "help":
		fmt.Fprintf(stdout, usage, plugin.About, contracts.APIVersion)
		return 0
	}
	fmt.Fprintf(stderr, "userspace: unknown argument %q\n"+usage, args[0], plugin.About, contracts.APIVersion)
	return 2
}
