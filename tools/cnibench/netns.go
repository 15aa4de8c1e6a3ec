package cnibench

import (
	"context"
	"sync"
	"time"

	"usrsp.dev/libs/testkit"
)

// NetnsMode says whether attachments get real network namespaces.
type NetnsMode string

const (
	NetnsAuto NetnsMode = "auto" // real when root, else none
	NetnsReal NetnsMode = "real" // `ip netns add` per attachment
	// NetnsNone makes no namespace per attachment, for plugins that never
	// enter it: every attachment names one shared namespace. It is a real
	// one (userspace's ADD checks CNI_NETNS, as the spec asks, and skel
	// refuses the plugin's own), held by an `unshare` process, in a new
	// user namespace when not root, so no root is needed.
	NetnsNone NetnsMode = "none"
)

// netnsTimeout bounds one `ip netns` run.
const netnsTimeout = 10 * time.Second

// namespaces creates and deletes the network namespace of each attachment.
// Neither is timed: the benchmark measures the plugin, not the runtime.
type namespaces struct {
	real   bool
	shared *sharedNetns // NetnsNone
}

// sharedNetns is NetnsNone's namespace, made on first use and held by an
// `unshare` process until close.
type sharedNetns struct {
	mu   sync.Mutex
	held *testkit.HeldNetns
}

// get returns the namespace's path, starting its holder process first.
func (s *sharedNetns) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		ctx, cancel := context.WithTimeout(ctx, netnsTimeout)
		defer cancel()
		held, err := testkit.UnshareNetns(ctx)
		if err != nil {
			return "", err
		}
		s.held = held
	}
	return s.held.Path, nil
}

// close ends the holder and waits for it; the namespace goes with it.
func (s *sharedNetns) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return nil
	}
	err := s.held.Close()
	s.held = nil
	return err
}

func (n namespaces) create(ctx context.Context, name string) (path, netnsName string, err error) {
	if !n.real {
		path, err := n.shared.get(ctx)
		return path, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, netnsTimeout)
	defer cancel()
	if path, err = testkit.AddNetns(ctx, name); err != nil {
		return "", "", err
	}
	return path, name, nil
}

// remove deletes a namespace created by create; dummy paths need nothing.
func (n namespaces) remove(ctx context.Context, netnsName string) error {
	if netnsName == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, netnsTimeout)
	defer cancel()
	return testkit.DelNetns(ctx, netnsName)
}
