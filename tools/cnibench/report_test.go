package cnibench

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleReport() *Report {
	phase := func(name string, scale float64) Phase {
		ds := msDurations(3*scale, 4*scale, 5*scale, 40*scale)
		return Phase{Name: name, OK: len(ds), Latency: Summarize(ds), Histogram: Histogram(ds), WallMs: 50 * scale, PerSecond: 80 / scale}
	}
	a := Result{Label: "A", Binary: "/tmp/a/userspace", Phases: []Phase{phase("add", 1), phase("del", 1)}}
	b := Result{Label: "B", Binary: "/tmp/b/userspace", Phases: []Phase{phase("add", 2), phase("del", 2)}}
	b.Phases[0].Failed = 1
	b.Phases[0].Failures = []Failure{{Code: 11, Count: 1, Example: "no vpp adapter answers"}}
	r := &Report{Schema: Schema, Mode: "burst", Config: "memif.conflist", Network: "memif-net", Netns: "none",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Host: Host{Hostname: "h", CPUs: 2, Kernel: "6.1"},
		Params: Params{Concurrency: 4, Rounds: 1, Warmup: 3, IfName: "net1"}, Results: []Result{a, b}}
	r.Finish()
	return r
}

func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "%T is not an object", v)
	return slices.Sorted(maps.Keys(m))
}

// TestJSONSchema pins the field names machines read; renaming one must
// change Schema.
func TestJSONSchema(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteJSON(&buf))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))

	assert.Equal(t, "usrsp.cnibench/v1", doc["schema"])
	assert.Equal(t, []string{"config", "failed", "host", "mode", "netns", "network", "params", "ratios", "results", "schema", "started"}, keys(t, doc))
	assert.Equal(t, []string{"cpus", "hostname", "kernel"}, keys(t, doc["host"]))
	assert.Equal(t, []string{"concurrency", "ifName", "rounds", "warmup"}, keys(t, doc["params"]))

	results := doc["results"].([]any)
	require.Len(t, results, 2)
	assert.Equal(t, []string{"binary", "label", "phases"}, keys(t, results[0]))
	phases := results[1].(map[string]any)["phases"].([]any)
	assert.Equal(t, []string{"failed", "failures", "histogram", "latency", "name", "ok", "perSecond", "wallMs"}, keys(t, phases[0]))
	p := phases[0].(map[string]any)
	assert.Equal(t, []string{"maxMs", "meanMs", "medianMs", "minMs", "n", "p95Ms", "p99Ms"}, keys(t, p["latency"]))
	assert.Equal(t, []string{"count", "leMs"}, keys(t, p["histogram"].([]any)[0]))
	assert.Equal(t, []string{"code", "count", "example"}, keys(t, p["failures"].([]any)[0]))
	assert.Equal(t, []string{"a", "b", "bOverA", "phase", "stat"}, keys(t, doc["ratios"].([]any)[0]))
	assert.EqualValues(t, 1, doc["failed"])

	t.Run("scale and recover sections", func(t *testing.T) {
		r := Result{Label: "A", Scale: []ScaleStep{{Attachments: 100, RSSKiB: 2048}}, Recover: &Recovery{Attachments: 3, Back: 3}}
		b, err := json.Marshal(r)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		assert.Equal(t, []string{"attachments", "probe", "rssKiB", "window"}, keys(t, m["scale"].([]any)[0]))
		assert.Equal(t, []string{"allBackMs", "attachments", "back", "perAttachment", "restartCmdMs"}, keys(t, m["recover"]))
	})
}

func TestRatios(t *testing.T) {
	r := sampleReport()
	byKey := map[string]Ratio{}
	for _, x := range r.Ratios {
		byKey[x.Phase+" "+x.Stat] = x
	}
	assert.Len(t, byKey, 8, "median, p95, p99, perSecond for add and del")
	assert.InDelta(t, 2.0, byKey["add median"].BOverA, 1e-9)
	assert.InDelta(t, 2.0, byKey["del p99"].BOverA, 1e-9)
	assert.InDelta(t, 0.5, byKey["add perSecond"].BOverA, 1e-9)

	t.Run("a phase without successes has no ratio", func(t *testing.T) {
		a := Result{Phases: []Phase{{Name: "add", OK: 0}}}
		b := Result{Phases: []Phase{{Name: "add", OK: 3, Latency: Summary{MedianMs: 1}}}}
		assert.Empty(t, Ratios(a, b))
	})
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteText(&buf))
	out := buf.String()
	for _, want := range []string{
		"cnibench burst  network=memif-net  netns=none",
		"A userspace",
		"B/A",
		"add histogram (ms)",
		"failed with CNI code 11",
	} {
		assert.Contains(t, out, want)
	}
}
