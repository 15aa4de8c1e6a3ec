package memif

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

const benchBurst = 32

func benchPair(b *testing.B, log2 uint8) (srv, cli *Interface) {
	return pair(b, Config{ID: 1}, Config{ID: 1, Log2RingSize: log2})
}

func reportPps(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds()/1e6, "Mpps")
}

// benchFrames returns benchBurst 64-byte frames to send and as many
// receive buffers.
func benchFrames() (pkts, bufs [][]byte) {
	pkts = make([][]byte, benchBurst)
	bufs = make([][]byte, benchBurst)
	for i := range pkts {
		pkts[i] = makeFrame(i, 64)
		bufs[i] = make([]byte, 2048)
	}
	return pkts, bufs
}

// startBench starts the measured part of b, counting allocations, and
// returns its start for reportPps.
func startBench(b *testing.B) time.Time {
	b.ReportAllocs()
	b.ResetTimer()
	return time.Now()
}

// loopback moves b.N 64-byte frames tx->rx, alternating bursts in one goroutine.
func loopback(b *testing.B, tx *TxQueue, rx *RxQueue) {
	pkts, bufs := benchFrames()
	start := startBench(b)
	for got := 0; got < b.N; {
		if _, err := tx.TxBurst(pkts[:min(benchBurst, b.N-got)]); err != nil {
			b.Fatal(err)
		}
		n, err := rx.RxBurst(bufs)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	reportPps(b, start)
}

func BenchmarkLoopbackClientToServer64B(b *testing.B) {
	srv, cli := benchPair(b, 10)
	tx, _ := queues2(b, cli, 0)
	_, rx := queues2(b, srv, 0)
	loopback(b, tx, rx)
}

func BenchmarkLoopbackServerToClient64B(b *testing.B) {
	srv, cli := benchPair(b, 10)
	tx, _ := queues2(b, srv, 0)
	_, rx := queues2(b, cli, 0)
	loopback(b, tx, rx)
}

// BenchmarkLoopbackPipelined64B runs sender and receiver on separate
// goroutines (separate cores when available), like two processes would.
func BenchmarkLoopbackPipelined64B(b *testing.B) {
	srv, cli := benchPair(b, 12)
	tx, _ := queues2(b, cli, 0)
	_, rx := queues2(b, srv, 0)
	pkts, bufs := benchFrames()
	start := startBench(b)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sent := 0; sent < b.N; {
			n, err := tx.TxBurst(pkts[:min(benchBurst, b.N-sent)])
			if err != nil {
				b.Error(err)
				return
			}
			sent += n
			if n == 0 {
				runtime.Gosched() // ring full: let the receiver run if it shares our P
			}
		}
	}()
	for got := 0; got < b.N; {
		n, err := rx.RxBurst(bufs)
		if err != nil {
			b.Fatal(err)
		}
		got += n
		if n == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	reportPps(b, start)
}
