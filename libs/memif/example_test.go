package memif_test

import (
	"context"
	"log"
	"time"

	"usrsp.dev/libs/memif"
)

// A client connecting to a vswitch's memif socket and echoing frames back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ifc, err := memif.Dial(ctx, memif.Config{
		SocketPath:    "/run/vpp/memif.sock",
		ID:            0,
		Secret:        "s3cret",
		Name:          "pod-eth1",
		NumQueuePairs: 1,
		Log2RingSize:  10,
		BufferSize:    2048,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ifc.Close()

	rx, _ := ifc.RxQueue(0)
	tx, _ := ifc.TxQueue(0)
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	for rx.Wait(ctx) == nil { // sleeps on the interrupt eventfd while idle
		for i := range bufs {
			bufs[i] = bufs[i][:cap(bufs[i])]
		}
		n, err := rx.RxBurst(bufs) // non-blocking, no allocations
		if err != nil {
			break
		}
		for sent := 0; sent < n; {
			m, err := tx.TxBurst(bufs[sent:n])
			if err != nil {
				return
			}
			sent += m
		}
	}
}
