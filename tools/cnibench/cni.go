package cnibench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Plugin is what a benchmark drives: ADD and DEL of one attachment. The
// production Plugin is a *Target; tests use fakes.
type Plugin interface {
	Label() string
	Add(ctx context.Context, a *Attachment) error
	Del(ctx context.Context, a *Attachment) error
}

// Attachment is one (containerID, ifName) in its own network namespace,
// with the Kubernetes CNI_ARGS Multus passes.
type Attachment struct {
	ContainerID string
	IfName      string
	PodUID      string
	PodName     string
	Netns       string // path given as CNI_NETNS
	netnsName   string // for deletion; "" in dummy mode
}

func (a *Attachment) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: a.ContainerID, NetNS: a.Netns, IfName: a.IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "cnibench"},
			{"K8S_POD_NAME", a.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", a.ContainerID},
			{"K8S_POD_UID", a.PodUID},
		},
	}
}

// NetworkConfig is a network configuration file as libcni reads it: a
// .conflist as is, a single-plugin .conf converted to a one-plugin list
// (what Multus does with either).
type NetworkConfig struct {
	List *libcni.NetworkConfigList
	// Plugin is the first plugin's raw config, for defaults such as
	// nats.url and nodeName of a userspace config.
	Plugin map[string]any
}

// LoadNetworkConfig parses b, a .conf or a .conflist.
func LoadNetworkConfig(b []byte) (*NetworkConfig, error) {
	var probe struct {
		Plugins json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("network config: %w", err)
	}
	var list *libcni.NetworkConfigList
	if probe.Plugins != nil {
		l, err := libcni.NetworkConfFromBytes(b)
		if err != nil {
			return nil, err
		}
		list = l
	} else {
		conf, err := libcni.NetworkPluginConfFromBytes(b)
		if err != nil {
			return nil, err
		}
		if list, err = libcni.ConfListFromConf(conf); err != nil {
			return nil, err
		}
	}
	if len(list.Plugins) == 0 {
		return nil, errors.New("network config has no plugins")
	}
	nc := &NetworkConfig{List: list}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &nc.Plugin); err != nil {
		return nil, fmt.Errorf("network config plugins[0]: %w", err)
	}
	return nc, nil
}

// MainType is the type of the first plugin: the one --bin replaces.
func (c *NetworkConfig) MainType() string { return c.List.Plugins[0].Network.Type }

// Target is one CNI binary run through libcni on one network config.
type Target struct {
	label string
	list  *libcni.NetworkConfigList
	cni   *libcni.CNIConfig
}

var _ Plugin = (*Target)(nil)

// TargetOptions say where a Target finds its plugins.
type TargetOptions struct {
	Label string
	// Binary, if set, is copied into a private bin directory as the
	// plugin named pluginType, searched before CNIPath, so two builds
	// of one plugin can run the same config side by side.
	Binary     string
	PluginType string
	CNIPath    []string // directories with the other plugins (IPAM, chained)
	WorkDir    string   // private bin and cache directories go here
	Stderr     io.Writer
}

// NewTarget prepares a Target; it copies the binary, it runs nothing.
func NewTarget(conf *NetworkConfig, o TargetOptions) (*Target, error) {
	binDirs := o.CNIPath
	if o.Binary != "" {
		dir := filepath.Join(o.WorkDir, "bin-"+o.Label)
		if err := copyExecutable(o.Binary, filepath.Join(dir, o.PluginType)); err != nil {
			return nil, err
		}
		binDirs = append([]string{dir}, o.CNIPath...)
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: stderr}, PluginDecoder: version.PluginDecoder{}}
	cache := filepath.Join(o.WorkDir, "cache-"+o.Label)
	return &Target{label: o.Label, list: conf.List, cni: libcni.NewCNIConfigWithCacheDir(binDirs, cache, exec)}, nil
}

// Label implements Plugin.
func (t *Target) Label() string { return t.label }

// Add implements Plugin.
func (t *Target) Add(ctx context.Context, a *Attachment) error {
	_, err := t.cni.AddNetworkList(ctx, t.list, a.runtimeConf())
	return err
}

// Del implements Plugin.
func (t *Target) Del(ctx context.Context, a *Attachment) error {
	return t.cni.DelNetworkList(ctx, t.list, a.runtimeConf())
}

// copyExecutable copies src to dst (mode 0755) and closes it before any
// plugin runs, so no exec sees a file still open for writing.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// ErrorCode is the CNI error code of err, or 0 when the plugin did not
// return a CNI error (it could not be run, was killed, or timed out).
func ErrorCode(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
