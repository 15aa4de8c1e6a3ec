package ovsdpdk

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"usrsp.dev/libs/testkit"
)

// Testpmd is a dpdk-testpmd process playing a pod's DPDK application. It
// needs no hugepages (--no-huge -m 256, so a bounded mbuf pool) and runs
// both its lcores on CPU 0,
// leaving CPU 1 to OVS's PMD thread.
type Testpmd struct {
	cmd    *exec.Cmd
	prefix string
	done   chan struct{}
	out    testkit.Buffer
}

// VirtioUserServer is the --vdev of a pod serving a vhost-user socket
// (OVS dpdkvhostuserclient connects to it).
func VirtioUserServer(sock string) string {
	return "net_virtio_user0,path=" + sock + ",server=1,queue_size=1024"
}

// VirtioUserClient is the --vdev of a pod connecting to OVS's
// dpdkvhostuser socket.
func VirtioUserClient(sock string) string {
	return "net_virtio_user0,path=" + sock + ",queue_size=1024"
}

// MemifClient is the --vdev of a pod connecting to OVS's memif server
// socket. Give testpmd --rxq/--txq equal to the port's n_rxq.
func MemifClient(sock string) string {
	return "net_memif0,role=client,id=0,socket=" + sock + ",socket-abstract=no"
}

// StartTestpmd runs dpdk-testpmd with one vdev; appArgs go after "--"
// (e.g. "--forward-mode=rxonly"). It keeps running (--stats-period) until
// Stop.
func StartTestpmd(vdev string, appArgs ...string) (*Testpmd, error) {
	return StartTestpmdEAL([]string{"--vdev=" + vdev}, appArgs...)
}

// StartTestpmdEAL is StartTestpmd with the device EAL arguments given
// whole, as `pod-consumer dpdk-args --eal-only` prints them.
func StartTestpmdEAL(eal []string, appArgs ...string) (*Testpmd, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	t := &Testpmd{prefix: "usrsp-pod-" + hex.EncodeToString(b), done: make(chan struct{})}
	args := append([]string{"--no-pci", "--no-telemetry", "--no-huge", "-m", "256", "--file-prefix=" + t.prefix,
		"--lcores=0@0,1@0"}, eal...)
	args = append(args, "--", "--stats-period=1", "--total-num-mbufs=16384")
	t.cmd = exec.Command("dpdk-testpmd", append(args, appArgs...)...)
	t.cmd.Stdout, t.cmd.Stderr = &t.out, &t.out
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	go func() { _ = t.cmd.Wait(); close(t.done) }()
	return t, nil
}

// Output is what testpmd printed so far.
func (t *Testpmd) Output() string { return t.out.String() }

// Exited is closed when the process has exited.
func (t *Testpmd) Exited() <-chan struct{} { return t.done }

// PID is the process id.
func (t *Testpmd) PID() int { return t.cmd.Process.Pid }

// Stop sends SIGINT (testpmd prints its final statistics), waits up to
// 10s, then SIGKILL; it removes /var/run/dpdk/<prefix> and returns the
// output.
func (t *Testpmd) Stop() string {
	select {
	case <-t.done:
	default:
		_ = t.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-t.done:
		case <-time.After(10 * time.Second):
			_ = t.cmd.Process.Kill()
			<-t.done
		}
	}
	_ = os.RemoveAll(filepath.Join("/var/run/dpdk", t.prefix))
	return t.Output()
}
