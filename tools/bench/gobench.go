package bench

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Package     string             `json:"package"`
	Name        string             `json:"name"`
	Iterations  int64              `json:"iterations"`
	NsPerOp     float64            `json:"nsPerOp"`
	BytesPerOp  float64            `json:"bytesPerOp"`
	AllocsPerOp float64            `json:"allocsPerOp"`
	Metrics     map[string]float64 `json:"metrics,omitempty"` // b.ReportMetric units, e.g. Mpps
}

// goBenchPackages are issue 6's Go benchmarks: contracts encoding,
// NetConf validation and libs/memif, each run in its own module.
var goBenchPackages = []struct{ module, pkg string }{
	{"tools", "./cnibench/"},
	{"services/cni-entry", "./internal/config/"},
	{"libs/memif", "."},
}

// runGoBenches runs every package's benchmarks (no tests) and parses
// their results; a package that fails is reported and the rest still run.
func runGoBenches(ctx context.Context, repo string, logf func(string, ...any)) ([]GoBench, []error) {
	var all []GoBench
	var errs []error
	for _, p := range goBenchPackages {
		start := time.Now()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-timeout", "5m", p.pkg)
		cmd.Dir = filepath.Join(repo, p.module)
		out, err := cmd.CombinedOutput()
		cancel()
		got := ParseGoBench(string(out))
		all = append(all, got...)
		logf("==> go benchmarks %s %s ... %d results (%s)", p.module, p.pkg, len(got), time.Since(start).Round(time.Second))
		if err != nil {
			errs = append(errs, fmt.Errorf("go test -bench in %s %s: %v\n%s", p.module, p.pkg, err, tailLines(string(out), 15)))
		}
	}
	return all, errs
}

// ParseGoBench reads `go test -bench -benchmem` output: "pkg:" lines name
// the package of the Benchmark lines that follow.
func ParseGoBench(out string) []GoBench {
	var res []GoBench
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(rest)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		g := GoBench{Package: pkg, Name: f[0], Iterations: n}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch unit := f[i+1]; unit {
			case "ns/op":
				g.NsPerOp = v
			case "B/op":
				g.BytesPerOp = v
			case "allocs/op":
				g.AllocsPerOp = v
			default:
				if g.Metrics == nil {
					g.Metrics = map[string]float64{}
				}
				g.Metrics[unit] = v
			}
		}
		res = append(res, g)
	}
	return res
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
