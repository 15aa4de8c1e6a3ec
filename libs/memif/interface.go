package memif

import (
	"context"
	"sync"
)

// Interface is one memif interface, client or server. A client is connected
// with Connect (or Dial); a server interface becomes connected whenever a
// client with its ID completes the handshake on the server's socket.
type Interface struct {
	cfg    Config
	srv    *Server // server role: the socket this interface is registered on
	ownSrv bool    // Close also closes srv (created by Listen/New)

	mu         sync.Mutex
	cur        *conn
	connecting bool
	closed     bool
	changed    chan struct{} // closed and replaced on every state change
	lastErr    error
}

// New creates an interface. A server interface starts listening on
// cfg.SocketPath immediately; a client does nothing until Connect.
func New(cfg Config) (*Interface, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Role == RoleServer {
		srv, err := NewServer(cfg.SocketPath)
		if err != nil {
			return nil, err
		}
		ifc, err := srv.Add(cfg)
		if err != nil {
			srv.Close()
			return nil, err
		}
		ifc.ownSrv = true
		return ifc, nil
	}
	return newInterface(cfg), nil
}

func newInterface(cfg Config) *Interface {
	return &Interface{cfg: cfg, changed: make(chan struct{})}
}

// Dial creates a client interface and connects it.
func Dial(ctx context.Context, cfg Config) (*Interface, error) {
	cfg.Role = RoleClient
	ifc, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := ifc.Connect(ctx); err != nil {
		ifc.Close()
		return nil, err
	}
	return ifc, nil
}

// Listen creates a server interface listening on cfg.SocketPath. Close
// removes the socket file.
func Listen(cfg Config) (*Interface, error) {
	cfg.Role = RoleServer
	return New(cfg)
}

// Config returns the configuration with defaults applied.
func (ifc *Interface) Config() Config { return ifc.cfg }

// Connect establishes the connection. For a client it dials and runs the
// handshake; it may be called again after the connection was lost. For a
// server it waits for a client, like WaitUp.
func (ifc *Interface) Connect(ctx context.Context) error {
	if ifc.cfg.Role == RoleServer {
		return ifc.WaitUp(ctx)
	}
	ifc.mu.Lock()
	switch {
	case ifc.closed:
		ifc.mu.Unlock()
		return ErrClosed
	case ifc.cur != nil || ifc.connecting:
		ifc.mu.Unlock()
		return ErrConnected
	}
	ifc.connecting = true
	ifc.mu.Unlock()

	c, err := clientHandshake(ctx, ifc.cfg)

	ifc.mu.Lock()
	ifc.connecting = false
	ifc.mu.Unlock()
	if err != nil {
		return err
	}
	if !ifc.attach(c) {
		c.close()
		return ErrClosed
	}
	return nil
}

// attach makes c the current connection and starts watching its socket; false if the interface is closed
// or already connected.
func (ifc *Interface) attach(c *conn) bool {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	if ifc.closed || ifc.cur != nil {
		return false
	}
	c.onDown = ifc.detach
	c.startReader() // before publishing c, so Close never races the WaitGroup.Add
	ifc.cur = c
	ifc.lastErr = nil
	ifc.signalLocked()
	return true
}

func (ifc *Interface) detach(c *conn) {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	if ifc.cur == c {
		ifc.cur = nil
		ifc.lastErr = c.err
		ifc.signalLocked()
	}
}

func (ifc *Interface) signalLocked() {
	close(ifc.changed)
	ifc.changed = make(chan struct{})
}

// Up reports whether the interface is connected.
func (ifc *Interface) Up() bool {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	return ifc.cur != nil
}

// WaitUp blocks until the interface is connected, closed or ctx ends.
func (ifc *Interface) WaitUp(ctx context.Context) error {
	for {
		ifc.mu.Lock()
		closed, up, ch := ifc.closed, ifc.cur != nil, ifc.changed
		ifc.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case up:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitDown blocks until the current connection ends and returns why it
// ended (nil for a local Disconnect or Close). If the interface is already
// down it returns why the last connection ended.
func (ifc *Interface) WaitDown(ctx context.Context) error {
	ifc.mu.Lock()
	c, last := ifc.cur, ifc.lastErr
	ifc.mu.Unlock()
	if c == nil {
		return last
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns why the last connection ended, or nil.
func (ifc *Interface) Err() error {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	return ifc.lastErr
}

// PeerName returns the name the peer announced, or "" when not connected.
func (ifc *Interface) PeerName() string {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	if ifc.cur == nil {
		return ""
	}
	return ifc.cur.peerName
}

func (ifc *Interface) current() (*conn, error) {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	if ifc.closed {
		return nil, ErrClosed
	}
	if ifc.cur == nil {
		return nil, ErrNotConnected
	}
	return ifc.cur, nil
}

// NumQueuePairs returns the number of queue pairs of the current connection
// (negotiated with the peer), or 0 when not connected.
func (ifc *Interface) NumQueuePairs() int {
	c, err := ifc.current()
	if err != nil {
		return 0
	}
	return min(len(c.tx), len(c.rx))
}

// TxQueue returns transmit queue i of the current connection. Queues are
// only valid for that connection: after a reconnect, fetch them again.
func (ifc *Interface) TxQueue(i int) (*TxQueue, error) {
	return queueOf(ifc, i, func(c *conn) []*TxQueue { return c.tx })
}

// RxQueue returns receive queue i of the current connection.
func (ifc *Interface) RxQueue(i int) (*RxQueue, error) {
	return queueOf(ifc, i, func(c *conn) []*RxQueue { return c.rx })
}

// queueOf returns entry i of the current connection's queues.
func queueOf[Q any](ifc *Interface, i int, queues func(*conn) []Q) (Q, error) {
	var none Q
	c, err := ifc.current()
	if err != nil {
		return none, err
	}
	qs := queues(c)
	if i < 0 || i >= len(qs) {
		return none, ErrQueueIndex
	}
	return qs[i], nil
}

// Disconnect ends the current connection (sending DISCONNECT to the peer)
// but keeps the interface usable: a client may Connect again, a server
// accepts the next client.
func (ifc *Interface) Disconnect() {
	ifc.mu.Lock()
	c := ifc.cur
	ifc.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// Close disconnects and releases every resource of the interface: sockets,
// mappings, eventfds and goroutines. A server interface created by New or
// Listen also stops listening and removes its socket file.
func (ifc *Interface) Close() error {
	ifc.mu.Lock()
	if ifc.closed {
		ifc.mu.Unlock()
		return nil
	}
	ifc.closed = true
	c := ifc.cur
	ifc.signalLocked()
	ifc.mu.Unlock()
	if c != nil {
		c.close()
	}
	if ifc.srv != nil {
		ifc.srv.remove(ifc)
		if ifc.ownSrv {
			return ifc.srv.Close()
		}
	}
	return nil
}
