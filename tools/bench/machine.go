package bench

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"

	"usrsp.dev/libs/ovsdpdk"
)

// Machine tells runs apart.
type Machine struct {
	Hostname  string `json:"hostname"`
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpuModel"`
	MemTotal  string `json:"memTotal"`
	Kernel    string `json:"kernel"`
	OVS       string `json:"ovs"`  // ovs-vswitchd-dpdk --version, first line
	DPDK      string `json:"dpdk"` // the DPDK it is linked with
	Go        string `json:"go"`
	GitCommit string `json:"gitCommit"`
	GitDirty  bool   `json:"gitDirty"`         // uncommitted changes in the tree measured
	VPPBin    string `json:"vppBin,omitempty"` // the VPP measured (its version is the engine run's vswitch)
}

var dpdkVersion = regexp.MustCompile(`DPDK \S+`)

func machineInfo(ctx context.Context, repo, vppBin string) Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version(), VPPBin: vppBin}
	m.Hostname, _ = os.Hostname()
	m.Kernel = strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if out, err := exec.CommandContext(ctx, ovsdpdk.DefaultVswitchd, "--version").Output(); err == nil {
		m.OVS, _, _ = strings.Cut(string(out), "\n")
		m.DPDK = dpdkVersion.FindString(string(out))
	}
	// Read-only git: which tree was measured.
	if out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "HEAD").Output(); err == nil {
		m.GitCommit = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		m.GitDirty = len(strings.TrimSpace(string(out))) > 0
	}
	return m
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// procField is the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAvg is the 1-minute load average ("?" if unknown).
func loadAvg() string {
	if f := strings.Fields(readFile("/proc/loadavg")); len(f) > 0 {
		return f[0]
	}
	return "?"
}
