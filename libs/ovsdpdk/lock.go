package ovsdpdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// LockFile serializes private OVS-DPDK instances across processes on this
// machine (test binaries run in parallel, the e2e suite, the demo, the
// benchmarks): the hugepages install-deps.sh reserves are sized for one
// holder's instances.
const LockFile = "/tmp/usrsp-ovsdpdktest.lock"

// MaxInstances is how many instances of DefaultSocketMemMB one holder of
// Lock may run at once (two "nodes" of an overlay test): install-deps.sh
// reserves hugepages for that many and no more. A holder that starts
// bigger instances (Config.SocketMemMB) runs only one, and needs the
// hugepages for it.
const MaxInstances = 2

// Lock takes the machine-wide lock for private instances, waiting until it
// is free or ctx ends, and returns its release. Its holder may run up to
// MaxInstances instances of the default size at once, no other process
// runs any meanwhile. flock has no timeout, so it polls without blocking:
// a Ctrl-C still ends the wait.
func Lock(ctx context.Context) (release func() error, err error) {
	f, err := os.OpenFile(LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f.Close, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", LockFile, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}
