package cnibench

import (
	"math"
	"slices"
	"time"
)

// Summary is the distribution of one phase's successful operation times,
// in milliseconds (JSON readers get plain numbers).
type Summary struct {
	N        int     `json:"n"`
	MinMs    float64 `json:"minMs"`
	MedianMs float64 `json:"medianMs"`
	P95Ms    float64 `json:"p95Ms"`
	P99Ms    float64 `json:"p99Ms"`
	MaxMs    float64 `json:"maxMs"`
	MeanMs   float64 `json:"meanMs"`
}

// Summarize sorts a copy of ds and reads its percentiles by nearest rank,
// so every reported value is one that was measured.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		N:        len(s),
		MinMs:    ms(s[0]),
		MedianMs: ms(Percentile(s, 50)),
		P95Ms:    ms(Percentile(s, 95)),
		P99Ms:    ms(Percentile(s, 99)),
		MaxMs:    ms(s[len(s)-1]),
		MeanMs:   ms(sum / time.Duration(len(s))),
	}
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of the
// sorted durations: the smallest value with at least p% of the samples at
// or below it. The median of an even count is the lower middle value.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Bucket counts the samples above the previous bucket's bound and at or
// below LeMs.
type Bucket struct {
	LeMs  float64 `json:"leMs"`
	Count int     `json:"count"`
}

// bucketBounds follow a 1-2-5 series from 0.1 ms to 1000 s: fine enough
// to tell a 3 ms exec from a 30 ms vswitch call, and fixed so that runs
// and binaries can be compared bucket by bucket. The last bucket also
// holds anything slower.
var bucketBounds = func() []time.Duration {
	var b []time.Duration
	for decade := 100 * time.Microsecond; decade < 1000*time.Second; decade *= 10 {
		b = append(b, decade, 2*decade, 5*decade)
	}
	return append(b, 1000*time.Second)
}()

// Histogram counts ds into the fixed buckets and returns the buckets from
// the first to the last non-empty one.
func Histogram(ds []time.Duration) []Bucket {
	counts := make([]int, len(bucketBounds))
	for _, d := range ds {
		i, _ := slices.BinarySearch(bucketBounds, d) // first bound >= d
		counts[min(i, len(counts)-1)]++
	}
	first, last := -1, -1
	for i, c := range counts {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return []Bucket{}
	}
	out := make([]Bucket, 0, last-first+1)
	for i := first; i <= last; i++ {
		out = append(out, Bucket{LeMs: ms(bucketBounds[i]), Count: counts[i]})
	}
	return out
}
