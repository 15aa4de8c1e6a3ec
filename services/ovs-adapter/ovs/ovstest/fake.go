// Package ovstest has an in-memory OVS for the adapter's unit tests. It
// follows the real client's rules: ownership by external_ids, bridges
// created as usrsp's and deleted only when usrsp's and empty.
package ovstest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"usrsp.dev/contracts"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// Fake is an in-memory ovs.Conn.
type Fake struct {
	mu       sync.Mutex
	ports    map[string]ovs.Port
	bridges  map[string]bool // name -> created by usrsp
	nextOF   int
	failNext map[string]error
	calls    map[string]int
	// Break, if set, makes vswitchd "fail" a port it returns an error for.
	Break func(ovs.PortSpec) string
	PMDs  int
}

var _ ovs.Conn = (*Fake)(nil)

// New returns an empty fake switch with one PMD thread.
func New() *Fake {
	return &Fake{ports: map[string]ovs.Port{}, bridges: map[string]bool{}, failNext: map[string]error{}, calls: map[string]int{}, nextOF: 1, PMDs: 1}
}

// FailNext makes the next call of method (e.g. "AddPorts") return err.
func (f *Fake) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = err
}

// Calls is how often method was called.
func (f *Fake) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// AddOperatorPort adds a port usrsp does not own (and its bridge, not
// usrsp's, if missing), as an operator would with ovs-vsctl.
func (f *Fake) AddOperatorPort(bridge, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.bridges[bridge]; !ok {
		f.bridges[bridge] = false
	}
	f.ports[name] = ovs.Port{PortSpec: ovs.PortSpec{Name: name, Bridge: bridge, Type: "internal"}, OFPort: f.of()}
}

// AddOperatorBridge adds an empty bridge usrsp does not own.
func (f *Fake) AddOperatorBridge(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bridges[name] = false
}

// Bridges returns the bridge names.
func (f *Fake) Bridges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.bridges))
}

// Remove deletes a port behind the adapter's back (as an operator might).
func (f *Fake) Remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ports, name)
}

// SetBroken marks a port as failed by vswitchd (e.g. after a crash).
func (f *Fake) SetBroken(name, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.ports[name]
	p.Error, p.OFPort = msg, -1
	f.ports[name] = p
}

// All returns every port, sorted by name.
func (f *Fake) All() []ovs.Port {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sorted(func(ovs.Port) bool { return true })
}

func (f *Fake) of() int { f.nextOF++; return f.nextOF - 1 }

func (f *Fake) begin(method string) error {
	f.calls[method]++
	err := f.failNext[method]
	delete(f.failNext, method)
	return err
}

func (f *Fake) sorted(keep func(ovs.Port) bool) []ovs.Port {
	var out []ovs.Port
	for _, p := range f.ports {
		if keep(p) {
			p.PortSpec = p.PortSpec.Clone()
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b ovs.Port) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// AddPorts implements ovs.OVS.
func (f *Fake) AddPorts(_ context.Context, specs []ovs.PortSpec) ([]ovs.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("AddPorts"); err != nil {
		return nil, err
	}
	for _, s := range specs {
		if p, ok := f.ports[s.Name]; ok && !p.Owned() {
			return nil, contracts.Errorf(contracts.CodeConflict, "OVS port %s exists and is not usrsp's", s.Name)
		}
	}
	var out []ovs.Port
	var broken error
	for _, s := range specs {
		if _, ok := f.bridges[s.Bridge]; !ok {
			f.bridges[s.Bridge] = true
		}
		p := ovs.Port{PortSpec: s.Clone(), OFPort: f.of(), MACInUse: "02:00:00:00:00:01"}
		if f.Break != nil {
			if msg := f.Break(s); msg != "" {
				p.Error, p.OFPort = msg, -1
				broken = contracts.Errorf(contracts.CodeVswitch, "ovs-vswitchd could not create port %s: %s", s.Name, msg)
			}
		}
		f.ports[s.Name] = p
		out = append(out, p)
	}
	return out, broken
}

// DeletePorts implements ovs.OVS.
func (f *Fake) DeletePorts(_ context.Context, names []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("DeletePorts"); err != nil {
		return nil, err
	}
	var deleted []string
	touched := map[string]bool{}
	for _, n := range names {
		if p, ok := f.ports[n]; ok && p.Owned() {
			delete(f.ports, n)
			deleted = append(deleted, n)
			touched[p.Bridge] = true
		}
	}
	for b := range touched {
		if !f.bridges[b] {
			continue
		}
		empty := true
		for _, p := range f.ports {
			empty = empty && p.Bridge != b
		}
		if empty {
			delete(f.bridges, b)
		}
	}
	return deleted, nil
}

// Ports implements ovs.OVS.
func (f *Fake) Ports(_ context.Context, names []string) ([]ovs.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Ports"); err != nil {
		return nil, err
	}
	return f.sorted(func(p ovs.Port) bool { return slices.Contains(names, p.Name) }), nil
}

// OwnedPorts implements ovs.OVS.
func (f *Fake) OwnedPorts(context.Context) ([]ovs.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("OwnedPorts"); err != nil {
		return nil, err
	}
	return f.sorted(ovs.Port.Owned), nil
}

// Sync implements ovs.OVS.
func (f *Fake) Sync(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.begin("Sync")
}

// Info implements ovs.OVS.
func (f *Fake) Info(context.Context) (ovs.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Info"); err != nil {
		return ovs.Info{}, err
	}
	return ovs.Info{Version: "3.1.0-fake", DPDKInitialized: true, PMDs: f.PMDs}, nil
}

// Ping implements ovs.Conn; FailNext("Ping", err) makes OVSDB unreachable
// once.
func (f *Fake) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.begin("Ping")
}

// Generation implements ovs.Conn: the fake's connection is never remade.
func (f *Fake) Generation() uint64 { return 1 }

// Close implements ovs.Conn; the fake stays usable (a restarted daemon in
// a test gets the same switch).
func (f *Fake) Close() error { return nil }
