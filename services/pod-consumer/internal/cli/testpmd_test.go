package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

// lockedBuffer collects a child process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The dpdk-args output starts a working DPDK app: dpdk-testpmd in icmpecho
// mode is the memif client of one "pod", the probe (memif master) of the
// other pings it.
func TestDPDKArgsStartTestpmd(t *testing.T) {
	bin, err := exec.LookPath("dpdk-testpmd")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs dpdk-testpmd (Debian package dpdk) and root")
	}
	sock := filepath.Join(t.TempDir(), "memif.sock")
	probeDir := podDir(t, memifPod("net1", contracts.MemifRoleMaster, sock, "10.8.0.1/24"))
	dpdkDir := podDir(t, memifPod("net1", contracts.MemifRoleSlave, sock, "10.8.0.2/24"))

	code, eal, errOut := run(context.Background(), "dpdk-args", "--eal-only", "--dir", dpdkDir, "--annotations", "")
	require.Equal(t, ExitOK, code, errOut)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	type result struct {
		code     int
		out, err string
	}
	pinged := make(chan result, 1)
	go func() { // the memif server: it must listen before testpmd dials
		code, out, errOut := run(ctx, "probe", "ping", "10.8.0.2", "--dir", probeDir, "--annotations", "",
			"-c", "2", "-i", "50ms", "-W", "2s", "--wait", "30s")
		pinged <- result{code, out, errOut}
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 10*time.Millisecond)

	prefix := "usrsp-pc-" + strconv.Itoa(os.Getpid())
	args := append([]string{"--no-pci", "--no-telemetry", "--no-huge", "-m", "256", "--file-prefix=" + prefix, "--lcores=0@0,1@0"},
		strings.Fields(eal)...)
	args = append(args, "--", "--forward-mode=icmpecho", "--stats-period=1", "--total-num-mbufs=16384")
	cmd := exec.Command(bin, args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
	})

	r := <-pinged
	require.Equal(t, ExitOK, r.code, "probe: %s\ntestpmd:\n%s", r.err, out.String())
	assert.Contains(t, r.out, "2 packets transmitted, 2 received, 0% packet loss")
}
