package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/tools/cnibench"
)

func report(phases ...cnibench.Phase) *cnibench.Report {
	return &cnibench.Report{Results: []cnibench.Result{{Label: "A", Phases: phases}}}
}

func addPhase(ok, failed int, median, p99, perSecond float64) cnibench.Phase {
	return cnibench.Phase{Name: "add", OK: ok, Failed: failed, PerSecond: perSecond,
		Latency: cnibench.Summary{N: ok, MedianMs: median, P99Ms: p99}}
}

func summary(median float64) cnibench.Summary { return cnibench.Summary{N: 10, MedianMs: median} }

func scaleReport(failed int, steps ...cnibench.ScaleStep) *cnibench.Report {
	r := report(addPhase(10, failed, 1, 1, 0))
	r.Results[0].Scale = steps
	r.Failed = failed
	return r
}

func recoverReport(rc cnibench.Recovery) *cnibench.Report {
	r := report()
	r.Results[0].Recover = &rc
	return r
}

// goodPort meets every target.
func goodPort() PortRun {
	burst := report(addPhase(64, 0, 80, 150, 250))
	burst.Params = cnibench.Params{Concurrency: 64, Rounds: 1}
	return PortRun{
		Port:          PortVhost,
		Latency:       report(addPhase(50, 0, 30, 40, 0)),
		Burst:         burst,
		Scale:         scaleReport(0, cnibench.ScaleStep{Probe: summary(30), RSSKiB: 20 << 10}, cnibench.ScaleStep{Attachments: 1000, Probe: summary(40), RSSKiB: 40 << 10}),
		Recover:       recoverReport(cnibench.Recovery{Attachments: 1000, Back: 1000, AllBackMs: 3000, RestartCmdMs: 1500}),
		AdapterAttach: summary(20),
		VswitchAdd:    summary(34),
		VswitchNoop:   summary(14.5),
	}
}

func statuses(ts []Target) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[t.Name] = t.Status
	}
	return m
}

func TestEvaluate(t *testing.T) {
	ipam := report(addPhase(50, 0, 6, 8, 0))
	allMet := map[string]string{
		"cni-entry own work": Met, "adapter overhead beyond vswitch": Met, "burst: all succeed": Met,
		"burst: p99 ≤ 10 × sequential median": Met, "burst: attachments/s": Met,
		"scale: ADD median at K ≤ 1.5 × at 0": Met, "scale: adapter RSS": Met, "recover after vswitch restart": Met,
	}
	with := func(changes map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range allMet {
			m[k] = v
		}
		for k, v := range changes {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		change func(p *PortRun)
		ipam   *cnibench.Report
		want   map[string]string
	}{
		{"all met", func(*PortRun) {}, ipam, allMet},
		{"cni-entry slow", func(p *PortRun) { p.Latency = report(addPhase(50, 0, 40, 50, 0)) }, ipam,
			// 40 − 20 − 6 = 14 ms; the burst p99 is still within 10 × 40.
			with(map[string]string{"cni-entry own work": Missed})},
		{"no IPAM baseline", func(*PortRun) {}, nil, with(map[string]string{"cni-entry own work": NoData})},
		{"adapter overhead", func(p *PortRun) { p.AdapterAttach = summary(25) }, ipam,
			with(map[string]string{"adapter overhead beyond vswitch": Missed})},
		{"no vsctl probes", func(p *PortRun) { p.VswitchAdd = cnibench.Summary{} }, ipam,
			with(map[string]string{"adapter overhead beyond vswitch": NoData})},
		{"burst failures and slow", func(p *PortRun) {
			p.Burst.Results[0].Phases[0] = addPhase(60, 4, 500, 900, 50)
		}, ipam, with(map[string]string{"burst: all succeed": Missed, "burst: p99 ≤ 10 × sequential median": Missed, "burst: attachments/s": Missed})},
		{"no burst", func(p *PortRun) { p.Burst = nil }, ipam,
			with(map[string]string{"burst: all succeed": NoData, "burst: p99 ≤ 10 × sequential median": NoData, "burst: attachments/s": NoData})},
		{"scale degrades and grows", func(p *PortRun) {
			p.Scale = scaleReport(0, cnibench.ScaleStep{Probe: summary(30), RSSKiB: 20 << 10}, cnibench.ScaleStep{Attachments: 1000, Probe: summary(46), RSSKiB: 65 << 10})
		}, ipam, with(map[string]string{"scale: ADD median at K ≤ 1.5 × at 0": Missed, "scale: adapter RSS": Missed})},
		{"scale failures", func(p *PortRun) {
			p.Scale = scaleReport(3, cnibench.ScaleStep{Probe: summary(30)}, cnibench.ScaleStep{Attachments: 1000, Probe: summary(31)})
		}, ipam, with(map[string]string{"scale: ADD median at K ≤ 1.5 × at 0": Missed, "scale: adapter RSS": NoData})},
		{"recover slow", func(p *PortRun) {
			p.Recover = recoverReport(cnibench.Recovery{Attachments: 1000, Back: 1000, AllBackMs: 5001})
		}, ipam, with(map[string]string{"recover after vswitch restart": Missed})},
		{"recover timed out", func(p *PortRun) {
			p.Recover = recoverReport(cnibench.Recovery{Attachments: 1000, Back: 10, TimedOut: true})
		}, ipam, with(map[string]string{"recover after vswitch restart": Missed})},
		{"recover fewer than asked", func(p *PortRun) {
			p.Recover = recoverReport(cnibench.Recovery{Attachments: 900, Back: 900, AllBackMs: 1000})
		}, ipam, with(map[string]string{"recover after vswitch restart": Missed})},
		{"recover capped size met", func(p *PortRun) {
			p.RecoverK = 30
			p.Recover = recoverReport(cnibench.Recovery{Attachments: 30, Back: 30, AllBackMs: 1000})
		}, ipam, allMet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goodPort()
			tt.change(&p)
			res := &Results{Params: Params{RecoverK: 1000}, Baselines: Baselines{IPAM: tt.ipam},
				Engines: []EngineRun{{Engine: "ovs-dpdk", Ports: []PortRun{p}}, {Engine: "vpp", Skipped: vppSkipped("no VPP here")}}}
			got := Evaluate(res)
			require.Len(t, got, len(allMet), "one target each, none for a skipped engine")
			assert.Equal(t, tt.want, statuses(got))
			for _, target := range got {
				assert.Equal(t, target.Status == NoData, target.Value == "", "%s: a value exactly when judged", target.Name)
			}
		})
	}
}

func TestEvaluateValues(t *testing.T) {
	res := &Results{Params: Params{RecoverK: 1000}, Baselines: Baselines{IPAM: report(addPhase(50, 0, 6, 8, 0))},
		Engines: []EngineRun{{Engine: "ovs-dpdk", Ports: []PortRun{goodPort()}}}}
	got := map[string]string{}
	for _, t := range Evaluate(res) {
		got[t.Name] = t.Value
	}
	assert.Equal(t, "4.00 ms (30.00 − 20.00 − 6.00)", got["cni-entry own work"])
	assert.Equal(t, "0.50 ms (20.00 − 19.50)", got["adapter overhead beyond vswitch"])
	assert.Equal(t, "5.0× (p99 150.0 ms, sequential median 30.0 ms)", got["burst: p99 ≤ 10 × sequential median"])
	assert.Equal(t, "1.33× (40.0 ms at 1000, 30.0 ms at 0)", got["scale: ADD median at K ≤ 1.5 × at 0"])
	assert.Equal(t, "3.00 s for 1000 (restart itself 1.50 s)", got["recover after vswitch restart"])
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: usrsp.dev/libs/memif
cpu: Intel(R) Xeon(R)
BenchmarkLoopbackClientToServer64B-2   	 5000000	       210.5 ns/op	         4.751 Mpps	       0 B/op	       0 allocs/op
BenchmarkInteropTestpmdTxonlyToGoClient
    interop_test.go:35: dpdk-testpmd not on PATH
--- SKIP: BenchmarkInteropTestpmdTxonlyToGoClient
PASS
ok  	usrsp.dev/libs/memif	3.1s
pkg: usrsp.dev/services/cni-entry/internal/config
BenchmarkLoadNetConf-2   	   50000	     23456 ns/op	    9876 B/op	     123 allocs/op
`
	got := ParseGoBench(out)
	require.Len(t, got, 2)
	assert.Equal(t, GoBench{Package: "usrsp.dev/libs/memif", Name: "BenchmarkLoopbackClientToServer64B-2", Iterations: 5000000,
		NsPerOp: 210.5, Metrics: map[string]float64{"Mpps": 4.751}}, got[0])
	assert.Equal(t, GoBench{Package: "usrsp.dev/services/cni-entry/internal/config", Name: "BenchmarkLoadNetConf-2", Iterations: 50000,
		NsPerOp: 23456, BytesPerOp: 9876, AllocsPerOp: 123}, got[1])
}

func TestWriteMarkdown(t *testing.T) {
	res := &Results{Params: Params{RecoverK: 1000}, Baselines: Baselines{IPAM: report(addPhase(50, 0, 6, 8, 0))},
		Engines: []EngineRun{{Engine: "ovs-dpdk", Ports: []PortRun{goodPort()}}, {Engine: "vpp", Skipped: vppSkipped("no VPP here")}},
		GoBench: []GoBench{{Package: "p", Name: "BenchmarkX-2", NsPerOp: 12, Metrics: map[string]float64{"Mpps": 3.5}}}}
	res.Targets = Evaluate(res)
	var b bytes.Buffer
	require.NoError(t, WriteMarkdown(&b, res))
	md := b.String()
	for _, want := range []string{
		"## ovs-dpdk vhost-user-client", "| cni-entry own work | ≤ 5 ms | 4.00 ms (30.00 − 20.00 − 6.00) | **met** |",
		"## vpp\n\n" + vppSkipped("no VPP here"), "| p | BenchmarkX-2 | 12 | 0 | 0 | 3.5 Mpps |", "| 1000 | 40.00 | 0.00 | 40.0 |",
	} {
		assert.Contains(t, md, want)
	}
}

func TestRestartRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		restart error
		wantErr string
	}{
		{"ok", nil, ""},
		{"failure reaches the command", errors.New("DPDK not initialized\nlog tail"), "error: DPDK not initialized | log tail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "r.sock")
			calls := 0
			srv, err := listenRestart(context.Background(), sock, func(context.Context) error { calls++; return tt.restart })
			require.NoError(t, err)
			t.Cleanup(func() { _ = srv.Close() })
			err = RequestRestart(sock, 5e9)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.wantErr)
			}
			assert.Equal(t, 1, calls)
		})
	}
}

func TestWriteMarkdownEngines(t *testing.T) {
	vpp := goodPort()
	vpp.Port = PortMemif
	vpp.Reconciled = Replays{Summaries: []Replay{{AtMs: 2100, DurationMs: 900, Message: "replayed 1000"}}, Attachments: 1000, LastAttachmentAtMs: 2150}
	tests := []struct {
		name string
		vpp  EngineRun
		want []string
	}{
		{"both measured", EngineRun{Engine: "vpp", Vswitch: "VPP 25.10-release", Adapter: "0.1.0+vpp25.10", Restart: vppRestartText, Load: "3.1 → 5.5", Ports: []PortRun{vpp}},
			[]string{
				"| ovs-dpdk | vhost-user-client | 30.0 / – | 64 of 64 | 250.0 | 150 | 30.0 → 40.0 (K=1000) | 40.0 | 3.00 for 1000 (1.50) |",
				"| vpp | memif | 30.0 / – | 64 of 64 | 250.0 | 150 | 30.0 → 40.0 (K=1000) | 40.0 | 3.00 for 1000 (1.50) |",
				"## vpp memif\n\nVPP 25.10-release, adapter 0.1.0+vpp25.10. Load average (1 min) at the engine's start → end: 3.1 → 5.5.",
				"Notes:\n\n- shared machine\n",
				"| recover after vswitch restart | ≤ 5 s for 1000 | 3.00 s for 1000 (restart itself 1.50 s) | **met** |",
				"adapter replays after the restart: replay done at 2.10 s, took 0.90 s (replayed 1000); 1000 per-attachment events, the last at 2.15 s.",
			}},
		{"vpp skipped", EngineRun{Engine: "vpp", Skipped: vppSkipped("no VPP here")},
			[]string{"| vpp | – | skipped | | | | | | |", "## vpp\n\n" + vppSkipped("no VPP here")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &Results{Params: Params{RecoverK: 1000}, Engines: []EngineRun{{Engine: "ovs-dpdk", Ports: []PortRun{goodPort()}}, tt.vpp},
				Notes: []string{"shared machine"}}
			res.Targets = Evaluate(res)
			var b bytes.Buffer
			require.NoError(t, WriteMarkdown(&b, res))
			for _, want := range tt.want {
				assert.Contains(t, b.String(), want)
			}
		})
	}
}

func TestRerenderV1(t *testing.T) {
	// A v1 file (OVS only) names the vswitch probes after ovs-vsctl.
	v1 := `{"schema":"usrsp.bench/v1","started":"2026-11-22T16:42:00Z","params":{"recoverK":1000},
"engines":[{"engine":"ovs-dpdk","ports":[{"port":"memif","network":"bench-memif",
"adapterAttach":{"n":10,"medianMs":20},"vsctlAddPort":{"n":20,"medianMs":34},"vsctlNoop":{"n":20,"medianMs":14.5}}]},
{"engine":"vpp","skipped":"VPP benchmarks need USRSP_VPP_BIN; skipped"}]}`
	path := filepath.Join(t.TempDir(), "2026-11-22.json")
	require.NoError(t, os.WriteFile(path, []byte(v1), 0o644))
	res, err := Rerender(path)
	require.NoError(t, err)
	assert.Equal(t, Schema, res.Schema)
	p := res.Engines[0].Ports[0]
	assert.Equal(t, 34.0, p.VswitchAdd.MedianMs)
	assert.Equal(t, 14.5, p.VswitchNoop.MedianMs)
	assert.Equal(t, ovsRestartText, res.Engines[0].Restart)
	for _, tg := range res.Targets {
		if tg.Name == "adapter overhead beyond vswitch" {
			assert.Equal(t, "0.50 ms (20.00 − 19.50)", tg.Value)
		}
	}
	md, err := os.ReadFile(filepath.Join(filepath.Dir(path), "2026-11-22.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| ovs-dpdk | memif |")
}
