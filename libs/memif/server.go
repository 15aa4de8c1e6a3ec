package memif

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// handshakeTimeout bounds how long a connecting client may take, so a stuck
// peer cannot hold an interface ID forever.
const handshakeTimeout = 10 * time.Second

var errNoRings = errors.New("memif: client announced no rings in one direction")

// Server is a listening memif control socket serving one or more server
// interfaces, told apart by interface ID.
type Server struct {
	path string
	ln   *net.UnixListener

	mu      sync.Mutex
	ifaces  map[uint32]*Interface
	pending map[*net.UnixConn]struct{} // sockets still in the handshake
	closed  bool
	wg      sync.WaitGroup
}

// NewServer listens on socketPath. A stale socket file left by a dead
// process is replaced; a live one is an error. Close removes the file.
func NewServer(socketPath string) (*Server, error) {
	if socketPath == "" || len(socketPath) > maxSocketPath {
		return nil, fmt.Errorf("memif: invalid socket path %q", socketPath)
	}
	if err := removeStaleSocket(socketPath); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: socketPath, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("memif: listening on %s: %w", socketPath, err)
	}
	ln.SetUnlinkOnClose(true)
	s := &Server{
		path:    socketPath,
		ln:      ln,
		ifaces:  make(map[uint32]*Interface),
		pending: make(map[*net.UnixConn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("memif: checking socket path: %w", err)
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("memif: %s exists and is not a socket", path)
	}
	c, err := net.Dial("unixpacket", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("memif: %s is in use by another server", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("memif: probing existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("memif: removing stale socket: %w", err)
	}
	return nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.path }

// Add registers a server interface for cfg.ID on this socket.
// cfg.SocketPath may be empty; cfg.Role is forced to RoleServer.
func (s *Server) Add(cfg Config) (*Interface, error) {
	if cfg.SocketPath == "" {
		cfg.SocketPath = s.path
	}
	if cfg.SocketPath != s.path {
		return nil, fmt.Errorf("memif: Config.SocketPath %s does not match server socket %s", cfg.SocketPath, s.path)
	}
	cfg.Role = RoleServer
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.ifaces[cfg.ID]; ok {
		return nil, fmt.Errorf("memif: interface id %d already registered on %s", cfg.ID, s.path)
	}
	ifc := newInterface(cfg)
	ifc.srv = s
	s.ifaces[cfg.ID] = ifc
	return ifc, nil
}

func (s *Server) remove(ifc *Interface) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ifaces[ifc.cfg.ID] == ifc {
		delete(s.ifaces, ifc.cfg.ID)
	}
}

// Close closes every interface of the server, stops listening and removes
// the socket file.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var ifs []*Interface
	for _, ifc := range s.ifaces {
		ifs = append(ifs, ifc)
	}
	for c := range s.pending {
		c.Close() // aborts handshakes in progress
	}
	s.mu.Unlock()

	err := s.ln.Close()
	for _, ifc := range ifs {
		ifc.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		sock, err := s.ln.AcceptUnix()
		if err != nil {
			if isClosedErr(err) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE; don't spin
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			sock.Close()
			return
		}
		s.pending[sock] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(sock)
	}
}

func (s *Server) serve(sock *net.UnixConn) {
	defer s.wg.Done()
	c, ifc, err := s.handshake(sock)
	s.mu.Lock()
	delete(s.pending, sock)
	s.mu.Unlock()
	if err != nil {
		return
	}
	attached := ifc.attach(c)
	ifc.release()
	if !attached {
		c.close()
	}
}

func (s *Server) hello() helloMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	qp, log2 := 1, uint8(1)
	for _, ifc := range s.ifaces {
		qp = max(qp, ifc.cfg.NumQueuePairs)
		log2 = max(log2, ifc.cfg.Log2RingSize)
	}
	if len(s.ifaces) == 0 {
		log2 = maxLog2RingSize
	}
	return helloMsg{
		Name:            "usrsp-memif",
		MinVersion:      version,
		MaxVersion:      version,
		MaxRegion:       255,
		MaxM2SRing:      uint16(qp - 1),
		MaxS2MRing:      uint16(qp - 1),
		MaxLog2RingSize: log2,
	}
}

// claim reserves the interface for one handshake at a time.
func (ifc *Interface) claim() string {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	switch {
	case ifc.closed:
		return "Interface closed"
	case ifc.cur != nil || ifc.connecting:
		return "Already connected"
	}
	ifc.connecting = true
	return ""
}

func (ifc *Interface) release() {
	ifc.mu.Lock()
	ifc.connecting = false
	ifc.mu.Unlock()
}

func (s *Server) lookup(id uint32) *Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ifaces[id]
}

type ringSpec struct {
	msg addRingMsg
	evt *os.File
}

// handshake runs the server side: HELLO out; INIT, ADD_REGION, ADD_RING...,
// CONNECT in, each answered; CONNECTED out. Everything the client sends is
// validated before it is mapped or dereferenced. On success the interface
// is still claimed; the caller releases it.
func (s *Server) handshake(sock *net.UnixConn) (_ *conn, ifc *Interface, err error) {
	_ = sock.SetDeadline(time.Now().Add(handshakeTimeout))
	c := newConn(sock)
	rings := [2]map[uint16]ringSpec{{}, {}} // [0]=S2M, [1]=M2S
	fail := func(reason string, e error) error {
		refuse(sock, reason)
		return e
	}
	defer func() {
		if err != nil {
			for _, m := range rings {
				for _, r := range m {
					r.evt.Close()
				}
			}
			c.teardown(err, false)
			if ifc != nil {
				ifc.release()
			}
			ifc = nil
		}
	}()

	if err = sendMsg(sock, s.hello(), -1); err != nil {
		return nil, nil, err
	}
	init, _, err := expect[initMsg](sock)
	if err != nil {
		return nil, nil, err
	}
	if init.Version != version {
		return nil, nil, fail("Incompatible memif version", fmt.Errorf("memif: client version %#x, want %#x", init.Version, version))
	}
	cand := s.lookup(init.ID)
	if cand == nil {
		return nil, nil, fail("ID mismatch", fmt.Errorf("memif: client asked for unknown interface id %d", init.ID))
	}
	if reason := cand.claim(); reason != "" {
		return nil, nil, fail(reason, fmt.Errorf("memif: interface id %d: %s", init.ID, reason))
	}
	ifc = cand
	cfg := ifc.cfg
	if init.Secret != cfg.Secret {
		return nil, nil, fail("Incorrect secret", fmt.Errorf("memif: interface id %d: client sent wrong secret", init.ID))
	}
	if init.Mode != cfg.Mode {
		return nil, nil, fail("Mode mismatch", fmt.Errorf("memif: interface id %d: client mode %v, want %v", init.ID, init.Mode, cfg.Mode))
	}
	if err = sendMsg(sock, ackMsg{}, -1); err != nil {
		return nil, nil, err
	}

	for {
		m, fd, err := recvMsg(sock)
		if err != nil {
			return nil, nil, err
		}
		switch m := m.(type) {
		case addRegionMsg:
			if fd < 0 {
				return nil, nil, fail("Missing region fd", errors.New("memif: ADD_REGION without fd"))
			}
			if int(m.Index) != len(c.regions) || len(c.regions) > 255 {
				closeFd(fd)
				return nil, nil, fail("Invalid region index", fmt.Errorf("memif: ADD_REGION index %d, want %d", m.Index, len(c.regions)))
			}
			mem, err := mmapFd(fd, m.Size)
			closeFd(fd) // the mapping keeps the memory alive
			if err != nil {
				return nil, nil, fail("Failed to map region", err)
			}
			c.regions = append(c.regions, mem)
		case addRingMsg:
			if fd < 0 {
				return nil, nil, fail("Missing interrupt fd", errors.New("memif: ADD_RING without fd"))
			}
			dir := 1
			if m.Flags&addRingFlagS2M != 0 {
				dir = 0
			}
			if _, dup := rings[dir][m.Index]; dup || int(m.Index) >= cfg.NumQueuePairs {
				closeFd(fd)
				return nil, nil, fail("Invalid ring index", fmt.Errorf("memif: ADD_RING index %d invalid (max %d queue pairs)", m.Index, cfg.NumQueuePairs))
			}
			if err := checkRing(m, c.regions, cfg.Log2RingSize); err != nil {
				closeFd(fd)
				return nil, nil, fail("Invalid ring", err)
			}
			evt, err := fileFromFd(fd)
			if err != nil {
				return nil, nil, fail("Invalid interrupt fd", err)
			}
			rings[dir][m.Index] = ringSpec{msg: m, evt: evt}
		case connectMsg:
			closeFd(fd)
			if err := s.buildQueues(c, rings); err != nil {
				return nil, nil, fail("Invalid rings", err)
			}
			rings = [2]map[uint16]ringSpec{} // now owned by c's queues
			c.peerName = m.Name
			if err := sendMsg(sock, connectedMsg{Name: cfg.Name}, -1); err != nil {
				return nil, nil, err
			}
			_ = sock.SetDeadline(time.Time{})
			return c, ifc, nil
		case disconnectMsg:
			closeFd(fd)
			return nil, nil, &PeerError{Code: m.Code, Reason: m.Reason}
		default:
			closeFd(fd)
			return nil, nil, fail("Unexpected message", fmt.Errorf("memif: unexpected %T during handshake", m))
		}
		if err := sendMsg(sock, ackMsg{}, -1); err != nil {
			return nil, nil, err
		}
	}
}

func checkRing(m addRingMsg, regions [][]byte, maxLog2 uint8) error {
	if m.Log2RingSize == 0 || m.Log2RingSize > maxLog2 {
		return fmt.Errorf("memif: ring size 2^%d not in 2^1..2^%d", m.Log2RingSize, maxLog2)
	}
	if int(m.Region) >= len(regions) {
		return fmt.Errorf("memif: ring in unknown region %d", m.Region)
	}
	if m.Offset%8 != 0 {
		return fmt.Errorf("memif: ring offset %d not 8-byte aligned", m.Offset)
	}
	if uint64(m.Offset)+ringBytes(m.Log2RingSize) > uint64(len(regions[m.Region])) {
		return fmt.Errorf("memif: ring at offset %d overruns region %d", m.Offset, m.Region)
	}
	return nil
}

// buildQueues turns the announced rings into queues. Queue indexes must be
// dense (0..n-1) in both directions.
func (s *Server) buildQueues(c *conn, rings [2]map[uint16]ringSpec) error {
	if len(rings[0]) == 0 || len(rings[1]) == 0 {
		return errNoRings
	}
	for dir := range rings {
		for i := range len(rings[dir]) {
			if _, ok := rings[dir][uint16(i)]; !ok {
				return fmt.Errorf("memif: ring indexes not contiguous, %d missing", i)
			}
		}
	}
	for dir := range rings {
		for i := range len(rings[dir]) {
			spec := rings[dir][uint16(i)]
			r := newRing(c.regions[spec.msg.Region], spec.msg.Offset, spec.msg.Log2RingSize)
			if got := r.cookie(); got != cookie {
				return fmt.Errorf("memif: ring %d has cookie %#x, want %#x", i, got, cookie)
			}
		}
	}
	for dir := range rings {
		for i := range len(rings[dir]) {
			spec := rings[dir][uint16(i)]
			setup := func(q *queue) {
				q.r = newRing(c.regions[spec.msg.Region], spec.msg.Offset, spec.msg.Log2RingSize)
				q.regions = c.regions
				q.evt = spec.evt
				q.kick[0] = 1
				q.cursor = q.r.tail() // both directions: tail is where the server is
			}
			if dir == 0 { // S2M: we receive, in polling mode until Wait unmasks
				rq := &RxQueue{}
				setup(&rq.q)
				rq.q.r.setFlags(ringFlagMaskInt)
				c.rx = append(c.rx, rq)
			} else {
				tq := &TxQueue{}
				setup(&tq.q)
				c.tx = append(c.tx, tq)
			}
		}
	}
	return nil
}
