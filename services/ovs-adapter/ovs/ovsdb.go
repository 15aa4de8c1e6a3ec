package ovs

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-openvswitch/ovsdb"

	"usrsp.dev/contracts"
)

const database = "Open_vSwitch"

// Config configures the OVSDB client.
type Config struct {
	// Remote is the OVSDB remote: "unix:/path" (default
	// unix:/var/run/openvswitch/db.sock) or "tcp:host:port".
	Remote string
	// CallTimeout bounds one OVSDB round trip (default 5s).
	CallTimeout time.Duration
	// ApplyTimeout bounds the wait for vswitchd to process new ports
	// (default 10s).
	ApplyTimeout time.Duration
}

// Client is the OVS implementation over OVSDB JSON-RPC, using
// go-openvswitch's ovsdb client with usrsp's own operations. It keeps one
// connection and redials after it breaks; Generation counts the dials so
// the daemon can reconcile after a reconnect.
//
// go-openvswitch's Transact drops per-operation results, so every write
// transaction ends with a select of the Open_vSwitch row: OVSDB stops at the
// first failing operation, so that select returns its row only when every
// operation before it succeeded. Guards ("wait" with timeout 0) make the
// state a transaction was planned on a precondition of it.
type Client struct {
	cfg Config

	mu   sync.Mutex
	conn *ovsdb.Client
	dead chan struct{}
	gen  uint64

	transactions, roundTripNanos, applyWaitNanos atomic.Int64
}

// Stats counts the client's OVSDB work since it was made: what separates
// the adapter's own time from the time spent waiting for OVS.
type Stats struct {
	Transactions int64         // OVSDB transact calls (reads and writes)
	RoundTrip    time.Duration // total time inside transact calls, ApplyWait included
	ApplyWait    time.Duration // part of RoundTrip spent waiting for vswitchd's cur_cfg
}

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{Transactions: c.transactions.Load(), RoundTrip: time.Duration(c.roundTripNanos.Load()),
		ApplyWait: time.Duration(c.applyWaitNanos.Load())}
}

var _ OVS = (*Client)(nil)

// NewClient returns a client; it dials on first use.
func NewClient(cfg Config) *Client {
	if cfg.Remote == "" {
		cfg.Remote = "unix:/var/run/openvswitch/db.sock"
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	return &Client{cfg: cfg}
}

// Generation is the number of successful dials so far; it grows when the
// connection to OVSDB was lost and made again.
func (c *Client) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// Ping checks that OVSDB answers (dialing if needed).
func (c *Client) Ping(ctx context.Context) error {
	conn, dead, err := c.connection()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	return c.await(ctx, conn, dead, func(ctx context.Context) error { return conn.Echo(ctx) })
}

func (c *Client) connection() (*ovsdb.Client, chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		select {
		case <-c.dead:
			_ = c.conn.Close()
			c.conn = nil
		default:
			return c.conn, c.dead, nil
		}
	}
	network, addr, ok := strings.Cut(c.cfg.Remote, ":")
	if !ok || (network != "unix" && network != "tcp") {
		return nil, nil, contracts.Errorf(contracts.CodeInvalidConfig, "OVSDB remote %q is not unix:<path> or tcp:<host>:<port>", c.cfg.Remote)
	}
	raw, err := net.DialTimeout(network, addr, c.cfg.CallTimeout)
	if err != nil {
		return nil, nil, contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB at %s unreachable: %v", c.cfg.Remote, err)
	}
	dc := &watchedConn{Conn: raw, dead: make(chan struct{})}
	conn, err := ovsdb.New(dc)
	if err != nil {
		_ = raw.Close()
		return nil, nil, contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB at %s: %v", c.cfg.Remote, err)
	}
	// go-openvswitch's receive loop spins on a broken (not closed)
	// connection; close it as soon as a read fails.
	go func() {
		<-dc.dead
		_ = conn.Close()
	}()
	c.conn, c.dead = conn, dc.dead
	c.gen++
	return conn, c.dead, nil
}

// watchedConn closes dead when a read fails: OVSDB went away.
type watchedConn struct {
	net.Conn
	once sync.Once
	dead chan struct{}
}

func (w *watchedConn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if err != nil {
		w.once.Do(func() { close(w.dead) })
	}
	return n, err
}

// await runs call, returning early with CodeTryAgainLater when the
// connection dies (go-openvswitch would wait for the context instead).
func (c *Client) await(ctx context.Context, conn *ovsdb.Client, dead chan struct{}, call func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB at %s did not answer: %v", c.cfg.Remote, err)
		}
		var oe *ovsdb.Error
		if errors.As(err, &oe) {
			return contracts.Errorf(contracts.CodeVswitch, "OVSDB: %v", err)
		}
		return contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB at %s: %v", c.cfg.Remote, err)
	case <-dead:
		return contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB connection to %s lost", c.cfg.Remote)
	}
}

// transact runs ops in one transaction. With checked, it appends the
// sentinel select (which also reads cur_cfg and next_cfg) and reports
// whether every op succeeded (ok false: a guard or an operation failed and
// nothing was committed); the sentinel row is the last of rows.
func (c *Client) transact(ctx context.Context, timeout time.Duration, ops []ovsdb.TransactOp, checked bool) (rows []ovsdb.Row, ok bool, err error) {
	conn, dead, err := c.connection()
	if err != nil {
		return nil, false, err
	}
	if checked {
		ops = append(ops, op{"op": "select", "table": "Open_vSwitch", "where": []any{}, "columns": []string{"_uuid", "cur_cfg", "next_cfg"}})
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err = c.await(ctx, conn, dead, func(ctx context.Context) error {
		var err error
		rows, err = conn.Transact(ctx, database, ops)
		return err
	})
	c.transactions.Add(1)
	c.roundTripNanos.Add(int64(time.Since(start)))
	if err != nil {
		return nil, false, err
	}
	if checked && (len(rows) == 0 || rows[len(rows)-1]["_uuid"] == nil) {
		return nil, false, nil
	}
	return rows, true, nil
}

// write commits ops plus a next_cfg increment, like ovs-vsctl, and
// returns the cur_cfg and next_cfg it saw: vswitchd has applied the
// change once cur_cfg reaches that next_cfg.
func (c *Client) write(ctx context.Context, ops []ovsdb.TransactOp) (cur, next int, ok bool, err error) {
	ops = append(ops, op{"op": "mutate", "table": "Open_vSwitch", "where": []any{}, "mutations": []any{[]any{"next_cfg", "+=", 1}}})
	rows, ok, err := c.transact(ctx, c.cfg.CallTimeout, ops, true)
	if err != nil || !ok {
		return 0, 0, ok, err
	}
	last := rows[len(rows)-1]
	return optInt(last["cur_cfg"]), optInt(last["next_cfg"]), true, nil
}

// awaitCfg waits until vswitchd has applied configuration next (cur_cfg
// >= next). Each step is a server-side "wait" for cur_cfg to change, so
// nothing polls; several steps happen only when other clients' changes
// are applied in between.
func (c *Client) awaitCfg(ctx context.Context, cur, next int) error {
	start := time.Now()
	defer func() { c.applyWaitNanos.Add(int64(time.Since(start))) }()
	deadline := start.Add(c.cfg.ApplyTimeout)
	for cur < next {
		left := time.Until(deadline)
		if left <= 0 {
			return contracts.Errorf(contracts.CodeTryAgainLater, "ovs-vswitchd did not apply the change within %s (is it running?)", c.cfg.ApplyTimeout)
		}
		rows, ok, err := c.transact(ctx, left+c.cfg.CallTimeout, []ovsdb.TransactOp{
			op{"op": "wait", "table": "Open_vSwitch", "where": []any{}, "columns": []string{"cur_cfg"},
				"until": "!=", "rows": []any{map[string]any{"cur_cfg": cur}}, "timeout": left.Milliseconds()},
		}, true)
		if err != nil {
			return err
		}
		if !ok {
			continue // timed out: reported above
		}
		cur = optInt(rows[len(rows)-1]["cur_cfg"])
	}
	return nil
}

func (c *Client) read(ctx context.Context, o op) ([]ovsdb.Row, error) {
	rows, _, err := c.transact(ctx, c.cfg.CallTimeout, []ovsdb.TransactOp{o}, false)
	return rows, err
}

// state is the part of the database one plan depends on.
type state struct {
	bridges map[string]bridgeRow // by name
	ports   map[string]portRow   // by name
	owner   map[string]string    // port uuid -> bridge name
}

func newState() *state {
	return &state{bridges: map[string]bridgeRow{}, ports: map[string]portRow{}, owner: map[string]string{}}
}

// portColumns are the Port columns that state.addPort reads.
var portColumns = []string{"_uuid", "name", "external_ids", "tag", "interfaces", "protected"}

// selectPort reads the port named name.
func selectPort(name string) op {
	return op{"op": "select", "table": "Port", "where": []any{[]any{"name", "==", name}}, "columns": portColumns}
}

type bridgeRow struct {
	uuid, name, datapathType string
	ports                    []string // port uuids
	owned                    bool
}

type portRow struct {
	uuid, name  string
	owned       bool
	tag         int
	protected   bool
	externalIDs map[string]string
	ifaces      []string
}

// readState reads every bridge and the ports named in names plus the
// bridges' local ports (all owned ports when names is nil).
func (c *Client) readState(ctx context.Context, names []string) (*state, error) {
	brRows, err := c.read(ctx, op{"op": "select", "table": "Bridge", "where": []any{},
		"columns": []string{"_uuid", "name", "ports", "external_ids", "datapath_type"}})
	if err != nil {
		return nil, err
	}
	st := newState()
	for _, r := range brRows {
		b := bridgeRow{uuid: uuidOf(r["_uuid"]), name: str(r["name"]), datapathType: str(r["datapath_type"]),
			ports: uuidSet(r["ports"]), owned: strMap(r["external_ids"])[ExtOwner] == OwnerValue}
		st.bridges[b.name] = b
		for _, p := range b.ports {
			st.owner[p] = b.name
		}
	}
	if names != nil {
		names = slices.Clone(names)
		for n := range st.bridges {
			names = append(names, n)
		}
	}
	ptRows, err := c.selectRows(ctx, "Port", names, portColumns)
	if err != nil {
		return nil, err
	}
	for _, r := range ptRows {
		st.addPort(r)
	}
	return st, nil
}

// readPortState reads what a plan for the single port name needs, without
// the bridges' port sets (which grow with every port): every bridge and the
// port in one round trip, and only when the port exists, which bridge holds
// it in a second. The state has no bridge port sets, so deletes, which must
// know whether a bridge empties, use readState.
func (c *Client) readPortState(ctx context.Context, name string) (*state, error) {
	rows, _, err := c.transact(ctx, c.cfg.CallTimeout, []ovsdb.TransactOp{
		op{"op": "select", "table": "Bridge", "where": []any{}, "columns": []string{"_uuid", "name", "external_ids", "datapath_type"}},
		selectPort(name),
	}, false)
	if err != nil {
		return nil, err
	}
	st := newState()
	for _, r := range rows { // one flat list: only Bridge rows have datapath_type
		if _, isBridge := r["datapath_type"]; isBridge {
			b := bridgeRow{uuid: uuidOf(r["_uuid"]), name: str(r["name"]), datapathType: str(r["datapath_type"]),
				owned: strMap(r["external_ids"])[ExtOwner] == OwnerValue}
			st.bridges[b.name] = b
			continue
		}
		st.addPort(r)
	}
	return st, c.readOwners(ctx, st)
}

// readOwners fills st.owner for st's ports (at most one: the flat result
// of several selects would not say which port a bridge holds).
func (c *Client) readOwners(ctx context.Context, st *state) error {
	if len(st.ports) > 1 {
		return contracts.Errorf(contracts.CodeInternal, "readOwners: %d ports, want at most 1", len(st.ports))
	}
	for _, p := range st.ports {
		rows, err := c.read(ctx, op{"op": "select", "table": "Bridge", "where": []any{[]any{"ports", "includes", uuidRef(p.uuid)}},
			"columns": []string{"name"}})
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			st.owner[p.uuid] = str(rows[0]["name"])
		}
	}
	return nil
}

func (st *state) addPort(r ovsdb.Row) {
	ext := strMap(r["external_ids"])
	p := portRow{uuid: uuidOf(r["_uuid"]), name: str(r["name"]), externalIDs: ext,
		owned: ext[ExtOwner] == OwnerValue, tag: optInt(r["tag"]), ifaces: uuidSet(r["interfaces"])}
	p.protected, _ = r["protected"].(bool)
	st.ports[p.name] = p
}

// manyNames is where selecting a whole table beats one select per name.
const manyNames = 64

// selectRows reads table's rows named in names (all of them when there
// are many), or the usrsp-owned ones when names is nil, in one round trip.
func (c *Client) selectRows(ctx context.Context, table string, names []string, columns []string) ([]ovsdb.Row, error) {
	sel := func(where []any) op {
		return op{"op": "select", "table": table, "where": where, "columns": columns}
	}
	var ops []ovsdb.TransactOp
	switch {
	case names == nil:
		ops = append(ops, sel([]any{[]any{"external_ids", "includes", ovsMap(map[string]string{ExtOwner: OwnerValue})}}))
	case len(names) > manyNames:
		ops = append(ops, sel([]any{}))
	default:
		for _, n := range names {
			ops = append(ops, sel([]any{[]any{"name", "==", n}}))
		}
	}
	rows, _, err := c.transact(ctx, c.cfg.CallTimeout, ops, false)
	return rows, err
}

// AddPorts implements OVS.
func (c *Client) AddPorts(ctx context.Context, specs []PortSpec) ([]Port, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		if !s.Owned() {
			return nil, contracts.Errorf(contracts.CodeInternal, "port %s: spec lacks external_ids:%s=%s", s.Name, ExtOwner, OwnerValue)
		}
		names[i] = s.Name
	}
	// A guard fails when another client changed what the plan relied on
	// (e.g. two attaches creating one bridge); plan again on fresh state.
	const attempts = 4
	for range attempts {
		var st *state
		var err error
		if len(names) == 1 { // an attach: nothing that grows with the bridge
			st, err = c.readPortState(ctx, names[0])
		} else {
			st, err = c.readState(ctx, names)
		}
		if err != nil {
			return nil, err
		}
		ops, err := planAdd(st, specs)
		if err != nil {
			return nil, err
		}
		cur, next, ok, err := c.write(ctx, ops)
		if err != nil {
			return nil, err
		}
		if ok {
			return c.awaitApplied(ctx, specs, cur, next)
		}
	}
	return nil, contracts.Errorf(contracts.CodeVswitch, "OVSDB rejected adding port %s on bridge %s %d times (concurrent changes or an invalid option)",
		specs[0].Name, specs[0].Bridge, attempts)
}

func planAdd(st *state, specs []PortSpec) ([]ovsdb.TransactOp, error) {
	var ops []ovsdb.TransactOp
	newPorts := map[string][]any{} // bridge name -> named port uuids to insert
	var bridgeOrder []string
	for i, s := range specs {
		if p, ok := st.ports[s.Name]; ok {
			if !p.owned {
				return nil, contracts.Errorf(contracts.CodeConflict, "OVS port %s exists and is not usrsp's (no external_ids:%s=%s)", s.Name, ExtOwner, OwnerValue)
			}
			// Replace our own leftover: guard that it is still there,
			// then drop it from its bridge (OVSDB garbage-collects it).
			ops = append(ops, guardRows("Port", p.uuid, []string{"name"}, []any{map[string]any{"name": p.name}}))
			if br, ok := st.owner[p.uuid]; ok {
				ops = append(ops, op{"op": "mutate", "table": "Bridge", "where": whereUUID(st.bridges[br].uuid),
					"mutations": []any{[]any{"ports", "delete", set(uuidRef(p.uuid))}}})
			}
		} else {
			ops = append(ops, guardAbsent("Port", s.Name))
		}
		b, ok := st.bridges[s.Bridge]
		switch {
		case ok && b.datapathType != "netdev":
			return nil, contracts.Errorf(contracts.CodeVswitch, "bridge %s has datapath_type %q; DPDK ports need netdev", s.Bridge, b.datapathType)
		case !ok && newPorts[s.Bridge] == nil:
			ops = append(ops, guardAbsent("Bridge", s.Bridge))
		}
		if newPorts[s.Bridge] == nil {
			bridgeOrder = append(bridgeOrder, s.Bridge)
		}
		ifRow := map[string]any{"name": s.Name, "type": s.Type, "options": ovsMap(s.Options), "external_ids": ovsMap(s.ExternalIDs)}
		if s.MTU > 0 {
			ifRow["mtu_request"] = s.MTU
		}
		if s.MAC != "" {
			ifRow["mac"] = s.MAC
		}
		ifID, portID := "i"+strconv.Itoa(i), "p"+strconv.Itoa(i)
		portRow := map[string]any{"name": s.Name, "interfaces": namedRef(ifID), "external_ids": ovsMap(s.ExternalIDs)}
		if s.Tag > 0 {
			portRow["tag"] = s.Tag
		}
		if s.Protected {
			portRow["protected"] = true
		}
		ops = append(ops,
			op{"op": "insert", "table": "Interface", "row": ifRow, "uuid-name": ifID},
			op{"op": "insert", "table": "Port", "row": portRow, "uuid-name": portID})
		newPorts[s.Bridge] = append(newPorts[s.Bridge], namedRef(portID))
	}
	for i, name := range bridgeOrder {
		if b, ok := st.bridges[name]; ok {
			ops = append(ops,
				guardRows("Bridge", b.uuid, []string{"name"}, []any{map[string]any{"name": name}}),
				op{"op": "mutate", "table": "Bridge", "where": whereUUID(b.uuid),
					"mutations": []any{[]any{"ports", "insert", set(newPorts[name]...)}}})
			continue
		}
		// Like ovs-vsctl add-br: the bridge with its internal local port.
		lif, lport, br := "bi"+strconv.Itoa(i), "bp"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		ops = append(ops,
			op{"op": "insert", "table": "Interface", "uuid-name": lif, "row": map[string]any{"name": name, "type": "internal"}},
			op{"op": "insert", "table": "Port", "uuid-name": lport, "row": map[string]any{"name": name, "interfaces": namedRef(lif)}},
			op{"op": "insert", "table": "Bridge", "uuid-name": br, "row": map[string]any{
				"name": name, "datapath_type": "netdev",
				"ports":        set(append([]any{namedRef(lport)}, newPorts[name]...)...),
				"external_ids": ovsMap(map[string]string{ExtOwner: OwnerValue})}},
			op{"op": "mutate", "table": "Open_vSwitch", "where": []any{},
				"mutations": []any{[]any{"bridges", "insert", set(namedRef(br))}}})
	}
	return ops, nil
}

// awaitApplied waits until vswitchd has applied configuration next, then
// reads the interfaces back (one round trip) for their ofport and error.
func (c *Client) awaitApplied(ctx context.Context, specs []PortSpec, cur, next int) ([]Port, error) {
	if err := c.awaitCfg(ctx, cur, next); err != nil {
		return nil, err
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	rows, err := c.selectRows(ctx, "Interface", names, []string{"name", "ofport", "error", "mac_in_use"})
	if err != nil {
		return nil, err
	}
	byName := map[string]ovsdb.Row{}
	for _, r := range rows {
		byName[str(r["name"])] = r
	}
	ports := make([]Port, 0, len(specs))
	var broken []string
	for _, s := range specs {
		r, ok := byName[s.Name]
		if !ok {
			return nil, contracts.Errorf(contracts.CodeVswitch, "port %s vanished right after it was added", s.Name)
		}
		p := Port{PortSpec: s.Clone(), OFPort: optInt(r["ofport"]), Error: optStr(r["error"]), MACInUse: optStr(r["mac_in_use"])}
		if p.Broken() {
			broken = append(broken, fmt.Sprintf("%s (%s): %s", p.Name, p.Type, p.Error))
		}
		ports = append(ports, p)
	}
	if len(broken) > 0 {
		return ports, contracts.Errorf(contracts.CodeVswitch, "ovs-vswitchd could not create port %s", strings.Join(broken, "; "))
	}
	return ports, nil
}

// DeletePorts implements OVS.
func (c *Client) DeletePorts(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if len(names) == 1 { // a detach: try without reading the bridge's port set
		if deleted, done, err := c.deleteNotLast(ctx, names[0]); err != nil || done {
			return deleted, err
		}
	}
	const attempts = 4
	for range attempts {
		st, err := c.readState(ctx, names)
		if err != nil {
			return nil, err
		}
		ops, deleted, kept := planDelete(st, names)
		if len(ops) == 0 {
			return nil, nil
		}
		cur, next, ok, err := c.write(ctx, ops)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		// Concurrent detaches on one bridge each see the other's port, so
		// none may have emptied it by its own plan: look again.
		if len(kept) > 0 {
			if err := c.dropEmptyBridges(ctx, kept); err != nil {
				return nil, err
			}
		}
		// Wait for vswitchd to close the ports, so their sockets are gone
		// and the names free when this returns.
		return deleted, c.awaitCfg(ctx, cur, next)
	}
	return nil, contracts.Errorf(contracts.CodeVswitch, "OVSDB rejected deleting port %s %d times (concurrent changes)", names[0], attempts)
}

// deleteNotLast deletes the port name, if usrsp owns it, in the common
// case of a detach: its bridge keeps other ports besides its local one.
// It reads nothing that grows with the bridge; a guard makes "not the
// last port" hold at commit. done is false when that guess was wrong (or
// raced), and DeletePorts then plans with the bridge's port set, which
// also drops an emptied usrsp bridge.
func (c *Client) deleteNotLast(ctx context.Context, name string) (deleted []string, done bool, err error) {
	st, err := c.readPortState(ctx, name)
	if err != nil {
		return nil, false, err
	}
	p, ok := st.ports[name]
	if !ok || !p.owned {
		return nil, true, nil // missing is fine, unowned is left alone
	}
	br, ok := st.owner[p.uuid]
	if !ok {
		return nil, true, nil // in no bridge: being deleted already
	}
	b := st.bridges[br]
	ops := []ovsdb.TransactOp{}
	if b.owned { // usrsp's bridge goes with its last port: not this way
		rows, err := c.read(ctx, op{"op": "select", "table": "Port", "where": []any{[]any{"name", "==", br}}, "columns": []string{"_uuid"}})
		if err != nil {
			return nil, false, err
		}
		last := []any{uuidRef(p.uuid)}
		if len(rows) == 1 {
			last = append(last, uuidRef(uuidOf(rows[0]["_uuid"])))
		}
		ops = append(ops, op{"op": "wait", "table": "Bridge", "where": whereUUID(b.uuid), "columns": []string{"ports"},
			"until": "!=", "rows": []any{map[string]any{"ports": set(last...)}}, "timeout": 0})
	}
	ops = append(ops, op{"op": "mutate", "table": "Bridge", "where": whereUUID(b.uuid),
		"mutations": []any{[]any{"ports", "delete", set(uuidRef(p.uuid))}}})
	cur, next, ok, err := c.write(ctx, ops)
	if err != nil || !ok {
		return nil, false, err
	}
	// Wait for vswitchd to close the port, so its socket is gone and the
	// name free when this returns.
	return []string{name}, true, c.awaitCfg(ctx, cur, next)
}

// dropEmptyBridges deletes those of bridges that usrsp created and that
// have nothing but their local port left.
func (c *Client) dropEmptyBridges(ctx context.Context, bridges []string) error {
	for range 4 {
		st, err := c.readState(ctx, []string{})
		if err != nil {
			return err
		}
		var ops []ovsdb.TransactOp
		for _, name := range bridges {
			b, ok := st.bridges[name]
			if !ok || !b.owned || !onlyLocalLeft(st, b, nil) {
				continue
			}
			ops = append(ops,
				guardRows("Bridge", b.uuid, []string{"ports"}, []any{map[string]any{"ports": uuidSetValue(b.ports)}}),
				op{"op": "mutate", "table": "Open_vSwitch", "where": []any{},
					"mutations": []any{[]any{"bridges", "delete", set(uuidRef(b.uuid))}}})
		}
		if len(ops) == 0 {
			return nil
		}
		if _, ok, err := c.transact(ctx, c.cfg.CallTimeout, ops, true); err != nil || ok {
			return err
		}
	}
	return nil // a bridge that keeps changing is in use: leave it
}

// planDelete plans removing the owned ports among names. kept are the
// usrsp bridges it removes ports from without deleting them.
func planDelete(st *state, names []string) (ops []ovsdb.TransactOp, deleted, kept []string) {
	remove := map[string][]any{} // bridge name -> port refs
	for _, n := range names {
		p, ok := st.ports[n]
		if !ok || !p.owned {
			continue
		}
		br, ok := st.owner[p.uuid]
		if !ok {
			continue
		}
		remove[br] = append(remove[br], uuidRef(p.uuid))
		deleted = append(deleted, n)
	}
	for br, refs := range remove {
		b := st.bridges[br]
		// Delete the bridge only if usrsp created it and nothing but its
		// local port remains; the guard (before the removal) makes that
		// hold at commit. Otherwise no guard: removing a port that is
		// already gone is a no-op.
		dropBridge := b.owned && onlyLocalLeft(st, b, refs)
		if dropBridge {
			ops = append(ops, guardRows("Bridge", b.uuid, []string{"ports"}, []any{map[string]any{"ports": uuidSetValue(b.ports)}}))
		}
		ops = append(ops, op{"op": "mutate", "table": "Bridge", "where": whereUUID(b.uuid),
			"mutations": []any{[]any{"ports", "delete", set(refs...)}}})
		if dropBridge {
			ops = append(ops, op{"op": "mutate", "table": "Open_vSwitch", "where": []any{},
				"mutations": []any{[]any{"bridges", "delete", set(uuidRef(b.uuid))}}})
		} else if b.owned {
			kept = append(kept, br)
		}
	}
	return ops, deleted, kept
}

// onlyLocalLeft reports whether removing refs leaves b with nothing but
// its local port (the internal port named like the bridge).
func onlyLocalLeft(st *state, b bridgeRow, refs []any) bool {
	removing := map[string]bool{}
	for _, r := range refs {
		removing[r.([]any)[1].(string)] = true
	}
	var left []string
	for _, u := range b.ports {
		if !removing[u] {
			left = append(left, u)
		}
	}
	return len(left) == 0 || (len(left) == 1 && left[0] == st.localPort(b))
}

// Ports implements OVS.
func (c *Client) Ports(ctx context.Context, names []string) ([]Port, error) {
	if len(names) == 0 {
		return nil, nil
	}
	ports, err := c.ports(ctx, names)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	return slices.DeleteFunc(ports, func(p Port) bool { return !want[p.Name] }), nil
}

// OwnedPorts implements OVS.
func (c *Client) OwnedPorts(ctx context.Context) ([]Port, error) {
	ports, err := c.ports(ctx, nil)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ports, func(p Port) bool { return !p.Owned() }), nil
}

var interfaceColumns = []string{"_uuid", "name", "type", "options", "mtu_request", "mac", "mac_in_use", "ofport", "error"}

func (c *Client) ports(ctx context.Context, names []string) ([]Port, error) {
	var st *state
	ifaces := map[string]ovsdb.Row{}
	if len(names) == 1 { // a check: nothing that grows with the bridge
		var err error
		if st, err = c.readPortAndInterface(ctx, names[0], ifaces); err != nil {
			return nil, err
		}
	} else {
		var err error
		if st, err = c.readState(ctx, names); err != nil {
			return nil, err
		}
		ifRows, err := c.selectRows(ctx, "Interface", names, interfaceColumns)
		if err != nil {
			return nil, err
		}
		for _, r := range ifRows {
			ifaces[uuidOf(r["_uuid"])] = r
		}
	}
	var out []Port
	for _, p := range st.ports {
		br, ok := st.owner[p.uuid]
		if !ok || len(p.ifaces) != 1 {
			continue // not in a bridge (being deleted) or a bond: not ours
		}
		r, ok := ifaces[p.ifaces[0]]
		if !ok {
			continue
		}
		out = append(out, Port{
			PortSpec: PortSpec{Name: p.name, Bridge: br, Type: str(r["type"]), Options: strMap(r["options"]),
				ExternalIDs: p.externalIDs, Tag: p.tag, MTU: optInt(r["mtu_request"]), MAC: optStr(r["mac"]), Protected: p.protected},
			OFPort: optInt(r["ofport"]), Error: optStr(r["error"]), MACInUse: optStr(r["mac_in_use"]),
		})
	}
	slices.SortFunc(out, func(a, b Port) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readPortAndInterface reads the port name and its interface (into
// ifaces, by uuid) in one round trip, and its bridge in a second.
func (c *Client) readPortAndInterface(ctx context.Context, name string, ifaces map[string]ovsdb.Row) (*state, error) {
	rows, _, err := c.transact(ctx, c.cfg.CallTimeout, []ovsdb.TransactOp{
		selectPort(name),
		op{"op": "select", "table": "Interface", "where": []any{[]any{"name", "==", name}}, "columns": interfaceColumns},
	}, false)
	if err != nil {
		return nil, err
	}
	st := newState()
	for _, r := range rows { // one flat list: only Interface rows have type
		if _, isIface := r["type"]; isIface {
			ifaces[uuidOf(r["_uuid"])] = r
			continue
		}
		st.addPort(r)
	}
	return st, c.readOwners(ctx, st)
}

// Sync implements OVS.
func (c *Client) Sync(ctx context.Context) error {
	cur, next, ok, err := c.write(ctx, nil)
	if err != nil {
		return err
	}
	if !ok {
		return contracts.Errorf(contracts.CodeVswitch, "OVSDB rejected the next_cfg update")
	}
	return c.awaitCfg(ctx, cur, next)
}

// Info implements OVS.
func (c *Client) Info(ctx context.Context) (Info, error) {
	rows, err := c.read(ctx, op{"op": "select", "table": "Open_vSwitch", "where": []any{},
		"columns": []string{"ovs_version", "dpdk_initialized", "other_config"}})
	if err != nil {
		return Info{}, err
	}
	if len(rows) != 1 {
		return Info{}, contracts.Errorf(contracts.CodeVswitch, "OVSDB has %d Open_vSwitch rows, want 1", len(rows))
	}
	r := rows[0]
	init, _ := r["dpdk_initialized"].(bool)
	return Info{Version: optStr(r["ovs_version"]), DPDKInitialized: init, PMDs: pmdCount(strMap(r["other_config"])["pmd-cpu-mask"])}, nil
}

// pmdCount is the number of PMD threads a pmd-cpu-mask gives (1 when
// unset or unparsable: OVS then starts one per NUMA node).
func pmdCount(mask string) int {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(mask), "0x"), 16, 64)
	if err != nil || v == 0 {
		return 1
	}
	return bits.OnesCount64(v)
}

func (st *state) localPort(b bridgeRow) string {
	if p, ok := st.ports[b.name]; ok {
		return p.uuid
	}
	return ""
}
