package contractstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"usrsp.dev/contracts"
)

// RunAdapterSuite runs the adapter conformance cases against target, each
// as a subtest: status, attach-replay, conflict, detach, check, list, gc,
// concurrent, restart and clean. It uses networks and container ids of
// its own (conformance-*, conf<run>-*), at most four attachments at once,
// and removes what it made, so it runs against real vswitches too.
//
// Events are checked against the standard in contracts (see
// contracts.Event): the suite relies on an adapter publishing a
// request's events before it answers the request.
func RunAdapterSuite(t *testing.T, target Target) {
	t.Helper()
	if target.NC == nil || target.Request == nil || target.Conflicting == nil || !target.Engine.Valid() {
		t.Fatal("contractstest: Target needs NC, a valid Engine, Request and Conflicting")
	}
	if target.Timeout <= 0 {
		target.Timeout = 10 * time.Second
	}
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	s := &suite{tg: target, client: contracts.NewClient(target.NC, target.Node, target.Timeout), run: hex.EncodeToString(run)}
	s.events = subscribe(t, target)
	if !t.Run("status", s.status) {
		return // nothing else can pass
	}
	t.Run("attach-replay", s.attachReplay)
	t.Run("conflict", s.conflict)
	t.Run("detach", s.detach)
	t.Run("check", s.check)
	t.Run("list", s.list)
	t.Run("gc", s.gc)
	t.Run("concurrent", s.concurrent)
	t.Run("restart", s.restart)
	t.Run("clean", s.clean)
}

type suite struct {
	tg     Target
	client *contracts.Client
	events *eventLog
	run    string // random, in every container id of this run
	n      atomic.Int32
}

// key returns a fresh attachment key of this run.
func (s *suite) key(ifName string) contracts.AttachmentKey {
	return contracts.AttachmentKey{ContainerID: fmt.Sprintf("conf%s%03d", s.run, s.n.Add(1)), IfName: ifName}
}

// network names a network of one case, so a failed case never leaves
// attachments in another's.
func network(t *testing.T, suffix string) string {
	name := t.Name()
	if i := strings.Index(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return "conformance-" + strings.ReplaceAll(name, "/", "-") + "-" + suffix
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.tg.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// attach attaches key on network (registering its detach as cleanup) and
// returns the request and the attachment.
func (s *suite) attach(t *testing.T, k contracts.AttachmentKey, network string) (*contracts.AttachRequest, contracts.Attachment) {
	t.Helper()
	r := s.tg.Request(k, network)
	t.Cleanup(func() { s.forget(k, network) })
	resp, err := s.client.Attach(s.ctx(t), s.tg.Engine, r)
	if err != nil {
		t.Fatalf("attach %s on %s: %v", k, network, err)
	}
	a := resp.Attachment
	if a.Key != k || a.Network != network || a.Engine != s.tg.Engine || a.HostIfName == "" {
		t.Fatalf("attach %s on %s returned key %s, network %q, engine %q, hostIfName %q", k, network, a.Key, a.Network, a.Engine, a.HostIfName)
	}
	return r, a
}

// forget detaches k, ignoring errors: the cleanup of a case.
func (s *suite) forget(k contracts.AttachmentKey, network string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.tg.Timeout)
	defer cancel()
	_, _ = s.client.Detach(ctx, s.tg.Engine, &contracts.DetachRequest{Key: k, Network: network})
}

func (s *suite) detachKey(t *testing.T, k contracts.AttachmentKey, network string) bool {
	t.Helper()
	resp, err := s.client.Detach(s.ctx(t), s.tg.Engine, &contracts.DetachRequest{Key: k, Network: network})
	if err != nil {
		t.Fatalf("detach %s: %v", k, err)
	}
	return resp.Removed
}

// listKeys lists network ("" for all) and returns the keys of this run.
func (s *suite) listKeys(t *testing.T, network string) []string {
	t.Helper()
	resp, err := s.client.List(s.ctx(t), s.tg.Engine, &contracts.ListRequest{Network: network})
	if err != nil {
		t.Fatalf("list %q: %v", network, err)
	}
	var keys []string
	for _, a := range resp.Attachments {
		if network != "" && a.Network != network {
			t.Errorf("list %q returned %s of network %q", network, a.Key, a.Network)
		}
		if strings.HasPrefix(a.Key.ContainerID, "conf"+s.run) {
			keys = append(keys, a.Key.String())
		}
	}
	slices.Sort(keys)
	return keys
}

func keyStrings(ks ...contracts.AttachmentKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.String()
	}
	slices.Sort(out)
	return out
}

func wantKeys(t *testing.T, what string, got []string, want ...contracts.AttachmentKey) {
	t.Helper()
	if w := keyStrings(want...); !slices.Equal(got, w) {
		t.Errorf("%s: got %v, want %v", what, got, w)
	}
}

func wantCode(t *testing.T, what string, err error, code contracts.Code) {
	t.Helper()
	if contracts.CodeOf(err) != code {
		t.Errorf("%s: got error %v (code %d), want code %d (%s)", what, err, contracts.CodeOf(err), code, code)
	}
}

func sameAttachment(t *testing.T, what string, got, want contracts.Attachment) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s: the attachment differs\n got: %s\nwant: %s", what, g, w)
	}
}

func (s *suite) status(t *testing.T) {
	deadline := time.Now().Add(s.tg.Timeout)
	for {
		st, err := s.client.Status(s.ctx(t), s.tg.Engine)
		if err == nil && st.Ready {
			if st.Engine != s.tg.Engine {
				t.Errorf("status engine %q, want %q", st.Engine, s.tg.Engine)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("adapter not ready within %s: status %+v, error %v", s.tg.Timeout, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *suite) attachReplay(t *testing.T) {
	k, net := s.key("net1"), network(t, "a")
	r, a := s.attach(t, k, net)
	s.events.want(t, contracts.EventAttached, k, net, contracts.MsgAttached)
	again, err := s.client.Attach(s.ctx(t), s.tg.Engine, r)
	if err != nil {
		t.Fatalf("replayed attach %s: %v", k, err)
	}
	sameAttachment(t, "replayed attach", again.Attachment, a)
	wantKeys(t, "list after replay", s.listKeys(t, net), k)
	if !s.detachKey(t, k, net) {
		t.Errorf("detach %s: Removed false for an attachment that exists", k)
	}
	s.events.want(t, contracts.EventDetached, k, net, contracts.MsgDetached)
}

func (s *suite) conflict(t *testing.T) {
	k, net := s.key("net1"), network(t, "a")
	r, a := s.attach(t, k, net)
	_, err := s.client.Attach(s.ctx(t), s.tg.Engine, s.tg.Conflicting(r))
	wantCode(t, "attach with a different spec", err, contracts.CodeConflict)
	ev := s.events.want(t, contracts.EventError, k, net, string(contracts.OpAttach)+": ")
	if ev.Code != contracts.CodeConflict {
		t.Errorf("error event of the conflict has code %d, want %d", ev.Code, contracts.CodeConflict)
	}
	resp, err := s.client.Check(s.ctx(t), s.tg.Engine, &contracts.CheckRequest{Key: k, Network: net, Interface: r.Interface})
	if err != nil {
		t.Fatalf("check after a refused conflicting attach: %v", err)
	}
	sameAttachment(t, "check after a refused conflicting attach", resp.Attachment, a)
}

func (s *suite) detach(t *testing.T) {
	net := network(t, "a")
	unknown := s.key("net1")
	if s.detachKey(t, unknown, net) {
		t.Errorf("detach of unknown %s: Removed true", unknown)
	}
	k := s.key("net2")
	s.attach(t, k, net)
	if !s.detachKey(t, k, net) {
		t.Errorf("detach %s: Removed false for an attachment that exists", k)
	}
	if s.detachKey(t, k, net) {
		t.Errorf("second detach %s: Removed true", k)
	}
	wantKeys(t, "list after detach", s.listKeys(t, net))
	s.barrier(t)
	if n := s.events.count(contracts.EventDetached, unknown); n != 0 {
		t.Errorf("detach of an unknown attachment published %d detached events, want none", n)
	}
	if n := s.events.count(contracts.EventDetached, k); n != 1 {
		t.Errorf("detach twice published %d detached events for %s, want 1", n, k)
	}
}

func (s *suite) check(t *testing.T) {
	k, net := s.key("net1"), network(t, "a")
	r, a := s.attach(t, k, net)
	resp, err := s.client.Check(s.ctx(t), s.tg.Engine, &contracts.CheckRequest{Key: k, Network: net, Interface: r.Interface})
	if err != nil {
		t.Fatalf("check of %s as attached: %v", k, err)
	}
	sameAttachment(t, "check", resp.Attachment, a)

	unknown := s.key("net1")
	_, err = s.client.Check(s.ctx(t), s.tg.Engine, &contracts.CheckRequest{Key: unknown, Network: net, Interface: s.tg.Request(unknown, net).Interface})
	wantCode(t, "check of an unknown attachment", err, contracts.CodeNotFound)
	if ev := s.events.want(t, contracts.EventError, unknown, net, string(contracts.OpCheck)+": "); ev.Code != contracts.CodeNotFound {
		t.Errorf("error event of check of an unknown attachment has code %d, want %d", ev.Code, contracts.CodeNotFound)
	}

	_, err = s.client.Check(s.ctx(t), s.tg.Engine, &contracts.CheckRequest{Key: k, Network: net, Interface: s.tg.Conflicting(r).Interface})
	wantCode(t, "check with a different spec", err, contracts.CodeMismatch)
	if ev := s.events.want(t, contracts.EventError, k, net, string(contracts.OpCheck)+": "); ev.Code != contracts.CodeMismatch {
		t.Errorf("error event of a mismatching check has code %d, want %d", ev.Code, contracts.CodeMismatch)
	}
	s.barrier(t)
	if n := s.events.count(contracts.EventError, k); n != 1 {
		t.Errorf("%d error events for %s, want 1 (a passing check publishes nothing)", n, k)
	}
}

func (s *suite) list(t *testing.T) {
	netA, netB := network(t, "a"), network(t, "b")
	a1, a2, b1 := s.key("net1"), s.key("net2"), s.key("net1")
	s.attach(t, a1, netA)
	s.attach(t, a2, netA)
	s.attach(t, b1, netB)
	wantKeys(t, "list of network a", s.listKeys(t, netA), a1, a2)
	wantKeys(t, "list of network b", s.listKeys(t, netB), b1)
	all := s.listKeys(t, "")
	for _, k := range keyStrings(a1, a2, b1) {
		if !slices.Contains(all, k) {
			t.Errorf("list of all networks lacks %s: %v", k, all)
		}
	}
	wantKeys(t, "list of an unknown network", s.listKeys(t, network(t, "none")))
}

func (s *suite) gcOf(t *testing.T, network string, valid ...contracts.AttachmentKey) []string {
	t.Helper()
	resp, err := s.client.GC(s.ctx(t), s.tg.Engine, &contracts.GCRequest{Network: network, Valid: valid})
	if err != nil {
		t.Fatalf("gc of %s: %v", network, err)
	}
	got := keyStrings(resp.Removed...)
	return got
}

func (s *suite) gc(t *testing.T) {
	netA, netB := network(t, "a"), network(t, "b")
	a1, a2, a3, b1 := s.key("net1"), s.key("net1"), s.key("net2"), s.key("net1")
	for _, k := range []contracts.AttachmentKey{a1, a2, a3} {
		s.attach(t, k, netA)
	}
	s.attach(t, b1, netB)
	ghost := s.key("net1") // valid but never attached
	wantKeys(t, "gc of network a keeping a1", s.gcOf(t, netA, a1, ghost), a2, a3)
	wantKeys(t, "list of network a after gc", s.listKeys(t, netA), a1)
	wantKeys(t, "list of network b after gc of a", s.listKeys(t, netB), b1)
	for _, k := range []contracts.AttachmentKey{a2, a3} {
		s.events.want(t, contracts.EventDetached, k, netA, contracts.MsgGarbageCollected)
	}
	s.barrier(t)
	for k, want := range map[contracts.AttachmentKey]int{a1: 0, a2: 1, a3: 1, b1: 0} {
		if n := s.events.count(contracts.EventDetached, k); n != want {
			t.Errorf("gc published %d detached events for %s, want %d", n, k, want)
		}
	}
	wantKeys(t, "gc of network a again", s.gcOf(t, netA, a1))
	wantKeys(t, "gc of network a with nothing valid", s.gcOf(t, netA), a1)
	wantKeys(t, "gc of network b with nothing valid", s.gcOf(t, netB), b1)
	wantKeys(t, "list of all after gc", s.listKeys(t, ""))
}

func (s *suite) concurrent(t *testing.T) {
	t.Run("one-key", func(t *testing.T) {
		k, net := s.key("net1"), network(t, "a")
		r := s.tg.Request(k, net)
		t.Cleanup(func() { s.forget(k, net) })
		const n = 8
		atts := make([]contracts.Attachment, n)
		errs := make([]error, n)
		parallel(n, func(i int) {
			resp, err := s.client.Attach(s.ctx(t), s.tg.Engine, r)
			if errs[i] = err; err == nil {
				atts[i] = resp.Attachment
			}
		})
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("concurrent attach %d of %s: %v", i, k, errs[i])
			}
			sameAttachment(t, fmt.Sprintf("concurrent attach %d", i), atts[i], atts[0])
		}
		wantKeys(t, "list after concurrent attaches", s.listKeys(t, net), k)
		var removed atomic.Int32
		parallel(4, func(int) {
			if resp, err := s.client.Detach(s.ctx(t), s.tg.Engine, &contracts.DetachRequest{Key: k, Network: net}); err != nil {
				t.Errorf("concurrent detach of %s: %v", k, err)
			} else if resp.Removed {
				removed.Add(1)
			}
		})
		if removed.Load() != 1 {
			t.Errorf("%d of 4 concurrent detaches of %s said Removed, want exactly 1", removed.Load(), k)
		}
		wantKeys(t, "list after concurrent detaches", s.listKeys(t, net))
	})
	t.Run("different-keys", func(t *testing.T) {
		net := network(t, "a")
		c := s.key("net1")
		keys := []contracts.AttachmentKey{c, {ContainerID: c.ContainerID, IfName: "net2"}, s.key("net1"), s.key("net3")}
		atts := make([]contracts.Attachment, len(keys))
		errs := make([]error, len(keys))
		for _, k := range keys {
			t.Cleanup(func() { s.forget(k, net) })
		}
		parallel(len(keys), func(i int) {
			resp, err := s.client.Attach(s.ctx(t), s.tg.Engine, s.tg.Request(keys[i], net))
			if errs[i] = err; err == nil {
				atts[i] = resp.Attachment
			}
		})
		names := map[string]contracts.AttachmentKey{}
		for i, k := range keys {
			if errs[i] != nil {
				t.Fatalf("concurrent attach of %s: %v", k, errs[i])
			}
			if atts[i].Key != k {
				t.Errorf("concurrent attach of %s returned %s", k, atts[i].Key)
			}
			if other, dup := names[atts[i].HostIfName]; dup {
				t.Errorf("%s and %s share host interface %s", k, other, atts[i].HostIfName)
			}
			names[atts[i].HostIfName] = k
		}
		wantKeys(t, "list after concurrent attaches", s.listKeys(t, net), keys...)
		parallel(len(keys), func(i int) {
			if resp, err := s.client.Detach(s.ctx(t), s.tg.Engine, &contracts.DetachRequest{Key: keys[i], Network: net}); err != nil || !resp.Removed {
				t.Errorf("concurrent detach of %s: removed %v, error %v", keys[i], resp != nil && resp.Removed, err)
			}
		})
		wantKeys(t, "list after concurrent detaches", s.listKeys(t, net))
	})
}

func (s *suite) restart(t *testing.T) {
	if s.tg.Restart == nil {
		t.Skip("Target.Restart is nil")
	}
	netA, netB := network(t, "a"), network(t, "b")
	k1, k2 := s.key("net1"), s.key("net1")
	r1, a1 := s.attach(t, k1, netA)
	r2, a2 := s.attach(t, k2, netB)
	s.tg.Restart(t)
	s.status(t)
	for _, c := range []struct {
		r *contracts.AttachRequest
		a contracts.Attachment
	}{{r1, a1}, {r2, a2}} {
		resp, err := s.client.Check(s.ctx(t), s.tg.Engine, &contracts.CheckRequest{Key: c.r.Key, Network: c.r.Network, Interface: c.r.Interface})
		if err != nil {
			t.Errorf("check of %s after restart: %v", c.r.Key, err)
			continue
		}
		sameAttachment(t, "check after restart", resp.Attachment, c.a)
	}
	all := s.listKeys(t, "")
	for _, k := range keyStrings(k1, k2) {
		if !slices.Contains(all, k) {
			t.Errorf("list after restart lacks %s: %v", k, all)
		}
	}
	resp, err := s.client.Attach(s.ctx(t), s.tg.Engine, r1)
	if err != nil {
		t.Fatalf("replayed attach of %s after restart: %v", k1, err)
	}
	sameAttachment(t, "replayed attach after restart", resp.Attachment, a1)
	if !s.detachKey(t, k1, netA) {
		t.Errorf("detach of %s after restart: Removed false", k1)
	}
	wantKeys(t, "gc of network b after restart", s.gcOf(t, netB), k2)
}

func (s *suite) clean(t *testing.T) {
	wantKeys(t, "attachments of this run left after the suite", s.listKeys(t, ""))
	if s.tg.AssertClean != nil {
		s.tg.AssertClean(t)
	}
}

// barrier makes sure every event published before it has arrived: it
// sends a CHECK of an unknown key and waits for that check's error
// event, which the adapter publishes after everything before it.
func (s *suite) barrier(t *testing.T) {
	t.Helper()
	k, net := s.key("barrier"), network(t, "barrier")
	_, err := s.client.Check(s.ctx(t), s.tg.Engine, &contracts.CheckRequest{Key: k, Network: net, Interface: s.tg.Request(k, net).Interface})
	wantCode(t, "check of the barrier key", err, contracts.CodeNotFound)
	s.events.want(t, contracts.EventError, k, net, string(contracts.OpCheck)+": ")
}

func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// eventLog records every event the adapter publishes.
type eventLog struct {
	tg Target
	mu sync.Mutex
	ev []contracts.Event
}

func subscribe(t *testing.T, tg Target) *eventLog {
	t.Helper()
	l := &eventLog{tg: tg}
	sub, err := tg.NC.Subscribe(contracts.ServicePrefix(tg.Node, tg.Engine)+".event.>", func(m *nats.Msg) {
		ev, err := contracts.DecodeEvent(m.Data)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			ev = &contracts.Event{Kind: "undecodable", Message: err.Error()}
		}
		if want := contracts.EventSubject(tg.Node, tg.Engine, ev.Kind); m.Subject != want {
			ev.Message = fmt.Sprintf("on subject %s, want %s: %s", m.Subject, want, ev.Message)
			ev.Kind = "misrouted"
		}
		l.ev = append(l.ev, *ev)
	})
	if err != nil {
		t.Fatalf("subscribe to events: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := tg.NC.Flush(); err != nil {
		t.Fatalf("flush the event subscription: %v", err)
	}
	return l
}

func (l *eventLog) match(kind contracts.EventKind, k contracts.AttachmentKey) []contracts.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []contracts.Event
	for _, ev := range l.ev {
		if ev.Kind == kind && ev.Key != nil && *ev.Key == k {
			out = append(out, ev)
		}
	}
	return out
}

func (l *eventLog) count(kind contracts.EventKind, k contracts.AttachmentKey) int {
	return len(l.match(kind, k))
}

// want waits for an event of kind about k and checks it against the
// standard: the network, a message starting with prefix, node and engine.
func (l *eventLog) want(t *testing.T, kind contracts.EventKind, k contracts.AttachmentKey, network, prefix string) contracts.Event {
	t.Helper()
	deadline := time.Now().Add(l.tg.Timeout)
	for {
		if evs := l.match(kind, k); len(evs) > 0 {
			ev := evs[len(evs)-1]
			if ev.Network != network || !strings.HasPrefix(ev.Message, prefix) || ev.Node != l.tg.Node || ev.Engine != l.tg.Engine {
				t.Errorf("%s event of %s: network %q message %q node %q engine %q; want network %q, message %q..., node %q, engine %q",
					kind, k, ev.Network, ev.Message, ev.Node, ev.Engine, network, prefix, l.tg.Node, l.tg.Engine)
			}
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s within %s; events about it: %s", kind, k, l.tg.Timeout, l.about(k))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *eventLog) about(k contracts.AttachmentKey) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, ev := range l.ev {
		if ev.Key != nil && *ev.Key == k || ev.Key == nil {
			parts = append(parts, fmt.Sprintf("%s %q", ev.Kind, ev.Message))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
