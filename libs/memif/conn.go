package memif

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// conn is one established (or establishing) memif connection: the control
// socket plus everything mapped or opened for it. It is torn down exactly once.
type conn struct {
	sock     *net.UnixConn
	regions  [][]byte // mappings; index = memif region index
	memfd    int      // client: region 0 file, kept so the mapping has an owner; -1 otherwise
	tx       []*TxQueue
	rx       []*RxQueue
	peerName string

	once    sync.Once
	err     error         // why the connection ended (nil after a local Close)
	done    chan struct{} // closed when teardown has finished
	onDown  func(*conn)   // called once after teardown
	readerW sync.WaitGroup
}

func newConn(sock *net.UnixConn) *conn {
	return &conn{sock: sock, memfd: -1, done: make(chan struct{})}
}

// sendMsg writes one control message, optionally passing fd via SCM_RIGHTS.
func sendMsg(s *net.UnixConn, m any, fd int) error {
	b := encodeMsg(m)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	n, _, err := s.WriteMsgUnix(b[:], oob, nil)
	if err != nil {
		return fmt.Errorf("memif: sending %T: %w", m, err)
	}
	if n != msgSize {
		return fmt.Errorf("memif: short write of %T: %d bytes", m, n)
	}
	return nil
}

// recvMsg reads one control message and at most one passed file descriptor
// (the protocol never sends more). Extra descriptors are closed.
func recvMsg(s *net.UnixConn) (any, int, error) {
	var b [msgSize + 1]byte // one spare byte detects oversized messages
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := s.ReadMsgUnix(b[:], oob)
	fd := -1
	if oobn > 0 {
		fd = parseFds(oob[:oobn])
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	if err != nil {
		closeFd(fd)
		return nil, -1, err
	}
	m, err := decodeMsg(b[:n])
	if err != nil {
		closeFd(fd)
		return nil, -1, err
	}
	return m, fd, nil
}

func parseFds(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	fd := -1
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, f := range fds {
			if fd < 0 {
				fd = f
			} else {
				unix.Close(f)
			}
		}
	}
	return fd
}

func closeFd(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// expect reads the next message and requires it to be of type T. A
// DISCONNECT from the peer becomes a *PeerError.
func expect[T any](s *net.UnixConn) (T, int, error) {
	var zero T
	m, fd, err := recvMsg(s)
	if err != nil {
		return zero, -1, err
	}
	if d, ok := m.(disconnectMsg); ok {
		closeFd(fd)
		return zero, -1, &PeerError{Code: d.Code, Reason: d.Reason}
	}
	t, ok := m.(T)
	if !ok {
		closeFd(fd)
		return zero, -1, fmt.Errorf("memif: expected %T, got %T", zero, m)
	}
	return t, fd, nil
}

// refuse tells the peer why we are giving up; best effort, the socket is
// closed by the caller.
func refuse(s *net.UnixConn, reason string) {
	_ = s.SetWriteDeadline(time.Now().Add(time.Second))
	_ = sendMsg(s, disconnectMsg{Reason: reason}, -1)
}

// startReader watches the control socket after the handshake: the only
// legal traffic now is DISCONNECT, and EOF means the peer went away.
func (c *conn) startReader() {
	c.readerW.Add(1)
	go func() {
		defer c.readerW.Done()
		for {
			m, fd, err := recvMsg(c.sock)
			closeFd(fd)
			switch {
			case err != nil:
				c.teardown(fmt.Errorf("%w: %w", ErrDisconnected, err), false)
				return
			case isDisconnect(m):
				d := m.(disconnectMsg)
				c.teardown(&PeerError{Code: d.Code, Reason: d.Reason}, false)
				return
			default:
				// Stray ACKs etc. are harmless; anything else is a protocol error.
				if _, ok := m.(ackMsg); !ok {
					c.teardown(fmt.Errorf("memif: unexpected %T after connect", m), true)
					return
				}
			}
		}
	}()
}

func isDisconnect(m any) bool { _, ok := m.(disconnectMsg); return ok }

// teardown releases everything the connection holds. Queues are closed under
// their locks first so no data-path call can touch memory after munmap.
func (c *conn) teardown(reason error, notifyPeer bool) {
	c.once.Do(func() {
		c.err = reason
		if notifyPeer && c.sock != nil {
			msg := "interface closed"
			if reason != nil {
				msg = reason.Error()
			}
			refuse(c.sock, msg)
		}
		if c.sock != nil {
			c.sock.Close()
		}
		for _, q := range c.tx {
			q.q.close()
		}
		for _, q := range c.rx {
			q.q.close()
		}
		for _, r := range c.regions {
			if r != nil {
				_ = unix.Munmap(r)
			}
		}
		c.regions = nil
		closeFd(c.memfd)
		c.memfd = -1
		if c.onDown != nil {
			c.onDown(c)
		}
		close(c.done)
	})
}

// close tears the connection down locally and waits for its reader goroutine.
func (c *conn) close() {
	c.teardown(nil, true)
	c.readerW.Wait()
}

// closeFiles closes eventfd files that were never handed to a queue.
func closeFiles(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// isClosedErr reports errors caused by our own Close.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}
