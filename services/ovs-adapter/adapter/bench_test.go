package adapter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// BenchmarkAttachRealOVS measures one attach on a private OVS-DPDK,
// including vswitchd creating the port. Run with -benchtime=20x: it
// reports the median as p50-ms.
func BenchmarkAttachRealOVS(b *testing.B) {
	inst := ovsdpdktest.Start(b)
	for _, kind := range []struct {
		name string
		req  func(contracts.AttachmentKey, string) *contracts.AttachRequest
	}{{"vhostuserclient", vhostClientReq}, {"memif", memifReq}} {
		b.Run(kind.name, func(b *testing.B) {
			e := benchEnv(b, inst)
			ctx := context.Background()
			var d []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				_, err := e.a.Attach(ctx, kind.req(key("bench"+strconv.Itoa(i), "net1"), e.sockDir))
				d = append(d, time.Since(start))
				require.NoError(b, err)
				i++
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
			b.StopTimer()
			_, err := e.a.GC(ctx, &contracts.GCRequest{Network: "net-a"})
			require.NoError(b, err)
		})
	}
}

// BenchmarkReconcileRealOVS measures reconciling USRSP_BENCH_PORTS
// (default 200) vhostuserclient ports: removing them all (adapter state
// lost) and re-creating them all (state restored), one transaction each.
func BenchmarkReconcileRealOVS(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("USRSP_BENCH_PORTS")); err == nil {
		n = v
	}
	inst := ovsdpdktest.Start(b)
	ctx := context.Background()
	e := benchEnv(b, inst)
	for i := range n {
		_, err := e.a.Attach(ctx, vhostClientReq(key("rec"+strconv.Itoa(i), "net1"), e.sockDir))
		require.NoError(b, err)
	}
	for b.Loop() {
		empty := benchEnvState(b, inst, filepath.Join(b.TempDir(), "empty"))
		start := time.Now()
		res, err := empty.a.Reconcile(ctx)
		require.NoError(b, err)
		require.Len(b, res.Removed, n)
		removeMs := time.Since(start)

		restored := benchEnvState(b, inst, e.store.Dir())
		start = time.Now()
		res, err = restored.a.Reconcile(ctx)
		require.NoError(b, err)
		require.Len(b, res.Recreated, n)
		b.ReportMetric(float64(removeMs.Milliseconds()), "remove-all-ms")
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "recreate-all-ms")
	}
	fmt.Fprintf(os.Stderr, "reconciled %d ports\n", n)
}

func benchEnv(b *testing.B, inst *ovsdpdk.Instance) *env {
	return benchEnvState(b, inst, filepath.Join(b.TempDir(), "state"))
}

func benchEnvState(b *testing.B, inst *ovsdpdk.Instance, stateDir string) *env {
	c := ovs.NewClient(ovs.Config{Remote: inst.DBRemote(), ApplyTimeout: time.Minute})
	b.Cleanup(func() { _ = c.Close() })
	store, err := adapter.OpenStore(stateDir)
	require.NoError(b, err)
	sockDir, err := os.MkdirTemp("", "pod")
	require.NoError(b, err)
	b.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	e := &env{ovs: c, store: store, events: &events{}, sockDir: sockDir, runDir: inst.RunDir()}
	e.a, err = adapter.New(adapter.Config{OVS: c, Store: store, Events: e.events,
		Metrics: adapter.NewMetrics(prometheus.NewRegistry()), OVSRunDir: inst.RunDir(), Version: "bench"})
	require.NoError(b, err)
	return e
}
