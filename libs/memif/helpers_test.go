package memif

import "fmt"

// ringState describes a queue's ring for failure messages.
func ringState(name string, q *queue) string {
	return fmt.Sprintf("%s: head=%d tail=%d flags=%d cursor=%d refill=%d closed=%v\n",
		name, q.r.head(), q.r.tail(), q.r.flags(), q.cursor, q.refill, q.closed)
}
