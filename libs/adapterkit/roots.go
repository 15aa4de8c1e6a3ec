package adapterkit

import (
	"cmp"
	"flag"

	"usrsp.dev/libs/confine"
)

// The node layout cni-entry and deploy/k8s use (cni-entry's config
// defaults sharedDir, linkDir and kubeletDir + "/pods").
const (
	DefaultSharedDir      = "/var/lib/cni/usrspcni"
	DefaultLinkDir        = "/run/usrsp/l"
	DefaultKubeletPodsDir = "/var/lib/kubelet/pods"
)

// PodDirs are the pod directories common to every adapter: where request
// socket paths may lead (see libs/confine). Empty fields take the defaults.
type PodDirs struct {
	SharedDir      string // NetConf sharedDir: <SharedDir>/<pod>
	LinkDir        string // NetConf linkDir: <LinkDir>/<hex> -> a pod directory
	KubeletPodsDir string // NetConf kubeletDir + "/pods": podVolume emptyDirs
}

// RegisterFlags registers --shared-dir, --link-dir and --kubelet-pods-dir
// (env SHARED_DIR, LINK_DIR, KUBELET_PODS_DIR) on fs.
func (d *PodDirs) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&d.SharedDir, "shared-dir", Env("SHARED_DIR", DefaultSharedDir), "base of the per-pod socket directories, the NetConf's sharedDir (env SHARED_DIR)")
	fs.StringVar(&d.LinkDir, "link-dir", Env("LINK_DIR", DefaultLinkDir), "directory of the socket links to pod directories, the NetConf's linkDir (env LINK_DIR)")
	fs.StringVar(&d.KubeletPodsDir, "kubelet-pods-dir", Env("KUBELET_PODS_DIR", DefaultKubeletPodsDir), "kubelet's pods directory, for podVolume emptyDirs (env KUBELET_PODS_DIR)")
}

// Roots are the directories the adapter may touch: the pod directories
// and its own (state dir, the vswitch's run dir). The shared and link
// directories are created when missing; a missing kubelet pods directory
// (no Kubernetes on this node) is left out.
func (d PodDirs) Roots(own ...string) (*confine.Roots, error) {
	return confine.Layout{
		SharedDir:      cmp.Or(d.SharedDir, DefaultSharedDir),
		LinkDir:        cmp.Or(d.LinkDir, DefaultLinkDir),
		KubeletPodsDir: cmp.Or(d.KubeletPodsDir, DefaultKubeletPodsDir),
		Own:            own,
	}.Roots()
}
