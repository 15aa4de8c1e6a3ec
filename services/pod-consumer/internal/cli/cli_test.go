package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/testkit"
	"usrsp.dev/services/pod-consumer/internal/discovery"
	"usrsp.dev/services/pod-consumer/version"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs one command the way main does and returns its exit code and output.
func run(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut testkit.Buffer
	code := Main(ctx, args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
	return code, out.String(), errOut.String()
}

// result is how a command started by start ended.
type result struct {
	code     int
	out, err string
}

// start runs one command in a goroutine; its result arrives on the channel.
func start(ctx context.Context, args ...string) <-chan result {
	done := make(chan result, 1)
	go func() {
		code, out, errOut := run(ctx, args...)
		done <- result{code, out, errOut}
	}()
	return done
}

// podDir writes pod data files into a new directory and returns it.
func podDir(t *testing.T, ds ...*contracts.PodData) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range ds {
		b, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, contracts.PodDataFileName(d.IfName)), b, 0o600))
	}
	return dir
}

func memifPod(ifName, role, socket, cidr string) *contracts.PodData {
	return &contracts.PodData{Version: contracts.PodDataVersion, ContainerID: "c-" + role, IfName: ifName, Network: "memif-net",
		HostEngine: contracts.EngineOVSDPDK,
		Interface: contracts.ContainerInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge, SocketPath: socket,
			Memif: &contracts.MemifSpec{Role: role, Mode: contracts.MemifModeEthernet, ID: 2, Queues: 1, RingSize: 256, BufferSize: 2048}},
		IPAM: &contracts.IPAMResult{IPs: []contracts.IPConfig{{Address: cidr}}}}
}

func TestList(t *testing.T) {
	sock := "/var/run/usrsp/memif-net1.sock"
	dir := podDir(t, memifPod("net1", contracts.MemifRoleSlave, sock, "10.9.0.1/24"))
	ann := filepath.Join(t.TempDir(), "annotations")
	status := `[{"name":"default/vhost","interface":"net2","device-info":{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"server","path":"/v.sock"}}}]`
	require.NoError(t, os.WriteFile(ann, []byte(discovery.NetworkStatusKey+"="+strconv.Quote(status)+"\n"), 0o600))

	code, out, _ := run(context.Background(), "list", "--dir", dir, "--annotations", ann)
	require.Equal(t, ExitOK, code)
	assert.Regexp(t, `(?m)^net1\s+memif slave id=2 ethernet q=1\s+/var/run/usrsp/memif-net1.sock\s+10.9.0.1/24\s+host=ovs-dpdk network=memif-net$`, out)
	assert.Regexp(t, `(?m)^net2\s+vhost-user server\s+/v.sock\s+\(network-status only\)$`, out)

	code, out, _ = run(context.Background(), "list", "--json", "--dir", dir, "--annotations", "")
	require.Equal(t, ExitOK, code)
	var ifs []discovery.Interface
	require.NoError(t, json.Unmarshal([]byte(out), &ifs))
	require.Len(t, ifs, 1)
	assert.Equal(t, sock, ifs[0].Data.Interface.SocketPath)

	code, out, _ = run(context.Background(), "list", "--dir", t.TempDir(), "--annotations", "")
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, out, "no userspace interfaces")
}

func TestErrorsAndUsage(t *testing.T) {
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, "usrsp-net1.json"), []byte("{"), 0o600))
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, ExitUsage, "Usage:"},
		{"unknown command", []string{"frob"}, ExitUsage, `unknown command "frob"`},
		{"apply needs vpp", []string{"apply", "--engine", "ovs-dpdk"}, ExitUsage, `--engine "ovs-dpdk": only vpp`},
		{"ping needs an IP", []string{"probe", "ping"}, ExitUsage, "want `probe ping <ip>`"},
		{"ping needs IPv4", []string{"probe", "ping", "fd00::1"}, ExitUsage, `"fd00::1" is not an IPv4 address`},
		{"bad pod data names the file", []string{"list", "--dir", bad, "--annotations", ""}, ExitFail, filepath.Join(bad, "usrsp-net1.json")},
		{"probe without a memif", []string{"probe", "serve", "--dir", t.TempDir(), "--annotations", ""}, ExitFail, "no memif with pod data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(context.Background(), tc.args...)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, errOut, tc.msg)
		})
	}
}

// TestVersionAndHelp: what the image smoke test and a person run.
func TestVersionAndHelp(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--version", "pod-consumer " + version.Version + " (contracts API v1, pod data usrsp/v1)\n"},
		{"version", "pod-consumer " + version.Version + " "},
		{"--help", "Usage:"},
		{"help", "pod-consumer --version | --help"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			code, out, _ := run(context.Background(), tc.arg)
			assert.Equal(t, ExitOK, code)
			assert.Contains(t, out, tc.want)
		})
	}
}

func TestDPDKArgs(t *testing.T) {
	dir := podDir(t, memifPod("net1", contracts.MemifRoleSlave, "/var/run/usrsp/memif-net1.sock", "10.9.0.1/24"))
	code, out, _ := run(context.Background(), "dpdk-args", "--dir", dir, "--annotations", "")
	require.Equal(t, ExitOK, code)
	assert.Equal(t, "--vdev=net_memif0,role=client,id=2,socket=/var/run/usrsp/memif-net1.sock,socket-abstract=no,rsize=8,bsize=2048\n", out)
}

// Two pods' worth of probe over a real memif: "serve" is the memif master
// (server), "ping" the slave (client), both through the command line.
func TestProbeServeAndPing(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "memif.sock")
	serverDir := podDir(t, memifPod("net1", contracts.MemifRoleMaster, sock, "10.9.0.1/24"))
	clientDir := podDir(t, memifPod("net1", contracts.MemifRoleSlave, sock, "10.9.0.2/24"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := start(ctx, "probe", "serve", "--dir", serverDir, "--annotations", "", "--duration", "20s")
	// the server creates the socket; the client retries until it is there.
	code, out, errOut := run(ctx, "probe", "ping", "10.9.0.1", "--dir", clientDir, "--annotations", "", "-c", "3", "-i", "10ms")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "PING 10.9.0.1 from 10.9.0.2 net1 (memif slave id 2 "+sock+"): 56 data bytes\n")
	assert.Regexp(t, `64 bytes from 10.9.0.1: icmp_seq=3 ttl=64 time=[0-9.]+ ms`, out)
	assert.Contains(t, out, "3 packets transmitted, 3 received, 0% packet loss\n")
	assert.Regexp(t, `rtt min/avg/max = [0-9.]+/[0-9.]+/[0-9.]+ ms`, out)

	code, out, _ = run(ctx, "probe", "ping", "10.9.0.77", "--json", "--dir", clientDir, "--annotations", "", "-c", "1", "-W", "50ms")
	assert.Equal(t, ExitFail, code, "no reply, exit code 1")
	var s struct {
		Received int    `json:"received"`
		Error    string `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	assert.Zero(t, s.Received)
	assert.Contains(t, s.Error, "no ARP reply from 10.9.0.77")

	cancel() // SIGTERM for the server
	r := <-served
	assert.Equal(t, ExitOK, r.code, r.err)
	assert.Contains(t, r.out, "net1: answering ARP and ping for 10.9.0.1")
	assert.Contains(t, r.out, "net1: answered 1 ARP requests and 3 echo requests\n")
}

// The dpdk-args output starts a working DPDK app: dpdk-testpmd in icmpecho
// mode is the memif client of one "pod", the probe (memif master) of the
// other pings it.
func TestDPDKArgsStartTestpmd(t *testing.T) {
	if _, err := exec.LookPath("dpdk-testpmd"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs dpdk-testpmd (Debian package dpdk) and root")
	}
	sock := filepath.Join(t.TempDir(), "memif.sock")
	probeDir := podDir(t, memifPod("net1", contracts.MemifRoleMaster, sock, "10.8.0.1/24"))
	dpdkDir := podDir(t, memifPod("net1", contracts.MemifRoleSlave, sock, "10.8.0.2/24"))

	code, eal, errOut := run(context.Background(), "dpdk-args", "--eal-only", "--dir", dpdkDir, "--annotations", "")
	require.Equal(t, ExitOK, code, errOut)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// The probe is the memif server: it must listen before testpmd dials.
	pinged := start(ctx, "probe", "ping", "10.8.0.2", "--dir", probeDir, "--annotations", "",
		"-c", "2", "-i", "50ms", "-W", "2s", "--wait", "30s")
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 10*time.Millisecond)

	pmd, err := ovsdpdk.StartTestpmdEAL(strings.Fields(eal), "--forward-mode=icmpecho")
	require.NoError(t, err)
	t.Cleanup(func() { pmd.Stop() })

	r := <-pinged
	require.Equal(t, ExitOK, r.code, "probe: %s\ntestpmd:\n%s", r.err, pmd.Output())
	assert.Contains(t, r.out, "2 packets transmitted, 2 received, 0% packet loss")
}
