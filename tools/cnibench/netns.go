package cnibench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// NetnsMode says whether attachments get real network namespaces.
type NetnsMode string

const (
	NetnsAuto NetnsMode = "auto" // real when root, else none
	NetnsReal NetnsMode = "real" // `ip netns add` per attachment
	NetnsNone NetnsMode = "none" // a path that does not exist, for plugins that never enter the netns
)

// netnsTimeout bounds one `ip netns` run.
const netnsTimeout = 10 * time.Second

// namespaces creates and deletes the network namespace of each attachment.
// Neither is timed: the benchmark measures the plugin, not the runtime.
type namespaces struct {
	real     bool
	dummyDir string
}

func (n namespaces) create(ctx context.Context, name string) (path, netnsName string, err error) {
	if !n.real {
		return filepath.Join(n.dummyDir, name), "", nil
	}
	if err := ipNetns(ctx, "add", name); err != nil {
		return "", "", err
	}
	return filepath.Join("/run/netns", name), name, nil
}

// remove deletes a namespace created by create; dummy paths need nothing.
func (n namespaces) remove(ctx context.Context, netnsName string) error {
	if netnsName == "" {
		return nil
	}
	return ipNetns(ctx, "delete", netnsName)
}

func ipNetns(ctx context.Context, verb, name string) error {
	ctx, cancel := context.WithTimeout(ctx, netnsTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", verb, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns %s %s: %v: %s", verb, name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
