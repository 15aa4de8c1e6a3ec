// Package discovery finds the pod's userspace interfaces: the pod data
// files cni-entry writes into the pod's socket directory, and, when the pod
// exposes its annotations through the downward API, Multus's
// network-status annotation (device-info).
package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"usrsp.dev/contracts"
)

// Defaults of the pod-side paths.
const (
	DefaultDir         = "/var/run/usrsp"
	DefaultAnnotations = "/etc/podinfo/annotations"
	// NetworkStatusKey is the annotation Multus writes the attachment status to.
	NetworkStatusKey = "k8s.v1.cni.cncf.io/network-status"
)

// Interface is one userspace interface of the pod.
type Interface struct {
	Name string `json:"name"` // interface name in the pod (CNI_IFNAME)
	// File is the pod data file it was read from; empty when the interface
	// is known only from the network-status annotation.
	File string             `json:"file,omitempty"`
	Data *contracts.PodData `json:"podData,omitempty"`
	// Status is the interface's entry in the network-status annotation.
	Status *NetworkStatus `json:"networkStatus,omitempty"`
}

// DeviceInfo returns the pod side's device info: the pod data's, else the
// annotation's.
func (i Interface) DeviceInfo() *contracts.DeviceInfo {
	if i.Data != nil && i.Data.DeviceInfo != nil {
		return i.Data.DeviceInfo
	}
	if i.Data != nil {
		if di := contracts.NewDeviceInfo(i.Data.Interface); di != nil {
			return di
		}
	}
	if i.Status != nil {
		return i.Status.DeviceInfo
	}
	return nil
}

// Discover reads every pod data file in dir and merges the network-status
// annotation of annotationsFile when that file exists ("" skips it).
// A missing dir is no error (the pod has no userspace interfaces yet);
// an unreadable or invalid file is, and the error names it.
func Discover(dir, annotationsFile string) ([]Interface, error) {
	ifs, err := LoadDir(dir)
	if err != nil {
		return nil, err
	}
	if annotationsFile == "" {
		return ifs, nil
	}
	b, err := os.ReadFile(annotationsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return ifs, nil
	}
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "annotations file %s: %v", annotationsFile, err)
	}
	statuses, err := NetworkStatusFromAnnotations(b)
	if err != nil {
		return nil, fmt.Errorf("annotations file %s: %w", annotationsFile, err)
	}
	return Merge(ifs, statuses), nil
}

// LoadDir reads the pod data files (contracts.PodDataGlob) in dir, sorted
// by interface name.
func LoadDir(dir string) ([]Interface, error) {
	// Read, not globbed: Glob hides an unreadable directory as "no
	// interfaces", and a non-root app outside the network's
	// podAccess.group must hear why instead.
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		hint := ""
		if errors.Is(err, fs.ErrPermission) {
			hint = " (run as root or as a member of the network's podAccess.group)"
		}
		return nil, contracts.Errorf(contracts.CodeIO, "pod data directory %s: %v%s", dir, err, hint)
	}
	out := make([]Interface, 0, len(entries))
	for _, e := range entries { // sorted by name
		if ok, _ := filepath.Match(contracts.PodDataGlob, e.Name()); !ok {
			continue
		}
		f := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrPermission) {
			return nil, contracts.Errorf(contracts.CodeIO, "pod data file %s: %v (run as root or as a member of the network's podAccess.group)", f, err)
		}
		if err != nil {
			return nil, contracts.Errorf(contracts.CodeIO, "pod data file %s: %v", f, err)
		}
		d, err := contracts.DecodePodData(b)
		if err != nil {
			return nil, &contracts.Error{Code: contracts.CodeOf(err), Message: fmt.Sprintf("pod data file %s: %v", f, err)}
		}
		if want := contracts.PodDataFileName(d.IfName); filepath.Base(f) != want {
			return nil, contracts.Errorf(contracts.CodeDecode, "pod data file %s: describes interface %q, whose file is %s", f, d.IfName, want)
		}
		out = append(out, Interface{Name: d.IfName, File: f, Data: d})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// Merge attaches each network-status entry to the pod data interface of
// the same name. Entries with userspace device-info but no pod data file
// are added (they are usable for dpdk-args); others (the cluster network,
// kernel interfaces) are ignored.
func Merge(ifs []Interface, statuses []NetworkStatus) []Interface {
	byName := make(map[string]int, len(ifs))
	for i := range ifs {
		byName[ifs[i].Name] = i
	}
	for _, s := range statuses {
		if i, ok := byName[s.Interface]; ok {
			ifs[i].Status = &s
			continue
		}
		if s.Interface != "" && s.DeviceInfo != nil && (s.DeviceInfo.Type == "memif" || s.DeviceInfo.Type == "vhost-user") {
			byName[s.Interface] = len(ifs)
			ifs = append(ifs, Interface{Name: s.Interface, Status: &s})
		}
	}
	sort.Slice(ifs, func(a, b int) bool { return ifs[a].Name < ifs[b].Name })
	return ifs
}

// NetworkStatus is one entry of the network-status annotation.
type NetworkStatus struct {
	Name       string                `json:"name"`
	Interface  string                `json:"interface,omitempty"`
	IPs        []string              `json:"ips,omitempty"`
	MAC        string                `json:"mac,omitempty"`
	Default    bool                  `json:"default,omitempty"`
	DeviceInfo *contracts.DeviceInfo `json:"device-info,omitempty"`
}

// NetworkStatusFromAnnotations parses a downward API annotations file and
// returns its network-status entries (none when the key is absent).
func NetworkStatusFromAnnotations(b []byte) ([]NetworkStatus, error) {
	ann, err := ParseAnnotations(b)
	if err != nil {
		return nil, err
	}
	v, ok := ann[NetworkStatusKey]
	if !ok {
		return nil, nil
	}
	var out []NetworkStatus
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, contracts.Errorf(contracts.CodeDecode, "annotation %s: %v", NetworkStatusKey, err)
	}
	return out, nil
}
