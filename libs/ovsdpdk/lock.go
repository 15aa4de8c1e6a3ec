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
// benchmarks): one instance takes all the hugepages install-deps.sh reserves.
const LockFile = "/tmp/usrsp-ovsdpdktest.lock"

// Lock takes the machine-wide lock for one private instance, waiting until
// it is free or ctx ends, and returns its release. flock has no timeout, so
// it polls without blocking: a Ctrl-C still ends the wait.
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
