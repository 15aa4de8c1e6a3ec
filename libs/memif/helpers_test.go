package memif

import (
	"bytes"
	"fmt"
	"sync"
)

// lockedBuffer collects child-process output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ringState describes a queue's ring for failure messages.
func ringState(name string, q *queue) string {
	return fmt.Sprintf("%s: head=%d tail=%d flags=%d cursor=%d refill=%d closed=%v\n",
		name, q.r.head(), q.r.tail(), q.r.flags(), q.cursor, q.refill, q.closed)
}
