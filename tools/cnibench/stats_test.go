package cnibench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func msDurations(vs ...float64) []time.Duration {
	out := make([]time.Duration, len(vs))
	for i, v := range vs {
		out[i] = time.Duration(v * float64(time.Millisecond))
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", msDurations(7), 99, 7 * time.Millisecond},
		{"median of odd count", msDurations(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even count is the lower middle", msDurations(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p95 of 1..100", hundred, 95, 95 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the min", hundred, 0.001, 1 * time.Millisecond},
		{"p99 of 10 samples is the max", msDurations(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, Percentile(tt.sorted, tt.p)) })
	}
}

func TestSummarize(t *testing.T) {
	t.Run("empty", func(t *testing.T) { assert.Equal(t, Summary{}, Summarize(nil)) })
	t.Run("unsorted input, left unchanged", func(t *testing.T) {
		in := msDurations(5, 1, 4, 2, 3)
		s := Summarize(in)
		assert.Equal(t, Summary{N: 5, MinMs: 1, MedianMs: 3, P95Ms: 5, P99Ms: 5, MaxMs: 5, MeanMs: 3}, s)
		assert.Equal(t, msDurations(5, 1, 4, 2, 3), in)
	})
}

func TestHistogram(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want []Bucket
	}{
		{"empty", nil, []Bucket{}},
		{"a bound belongs to its bucket", msDurations(1), []Bucket{{LeMs: 1, Count: 1}}},
		{"just above a bound goes up", msDurations(1.001), []Bucket{{LeMs: 2, Count: 1}}},
		{"range from first to last non-empty, gaps kept", msDurations(0.05, 3, 3, 4.9, 9),
			[]Bucket{{0.1, 1}, {0.2, 0}, {0.5, 0}, {1, 0}, {2, 0}, {5, 3}, {10, 1}}},
		{"slower than the last bound is counted in it", []time.Duration{2000 * time.Second}, []Bucket{{LeMs: 1e6, Count: 1}}},
		{"zero", []time.Duration{0}, []Bucket{{LeMs: 0.1, Count: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Histogram(tt.in)
			require.Equal(t, tt.want, got)
			total := 0
			for _, b := range got {
				total += b.Count
			}
			assert.Equal(t, len(tt.in), total)
		})
	}
}

func TestBucketBoundsAreOneTwoFive(t *testing.T) {
	require.Equal(t, 100*time.Microsecond, bucketBounds[0])
	require.Equal(t, 1000*time.Second, bucketBounds[len(bucketBounds)-1])
	for i := 1; i < len(bucketBounds); i++ {
		r := float64(bucketBounds[i]) / float64(bucketBounds[i-1])
		assert.Contains(t, []float64{2, 2.5}, r, "bound %d", i)
	}
}
