// Command userspace is the usrsp CNI plugin binary, installed as
// "userspace" in the CNI bin directory.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"usrsp.dev/services/cni-entry/internal/plugin"
)

func main() {
	p := plugin.New(os.Stdout, os.Stderr)
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status},
		version.PluginSupports(plugin.SupportedVersions...), plugin.About)
}
