// Package contracts is the only vocabulary shared between usrsp's binaries:
// NATS subjects, the JSON messages sent on them, the error codes (which are
// CNI error codes), the pod data file, and a typed client and service helper.
// It depends on the standard library and nats.go only.
package contracts

import (
	"fmt"
	"strings"
)

// APIVersion is the version token in every subject. A breaking change to a
// message gets a new token, so old and new adapters can run side by side.
const APIVersion = "v1"

// SubjectRoot prefixes every usrsp subject.
const SubjectRoot = "usrsp." + APIVersion

// Engine names a host vswitch. The values are the ones Userspace CNI
// configs already use in "engine".
type Engine string

const (
	EngineVPP     Engine = "vpp"
	EngineOVSDPDK Engine = "ovs-dpdk"
)

// Engines lists every engine an adapter exists for.
var Engines = []Engine{EngineVPP, EngineOVSDPDK}

// Valid reports whether e is a known engine.
func (e Engine) Valid() bool { return e == EngineVPP || e == EngineOVSDPDK }

// Op is one operation an adapter serves.
type Op string

const (
	OpAttach Op = "attach"
	OpDetach Op = "detach"
	OpCheck  Op = "check"
	OpList   Op = "list"
	OpGC     Op = "gc"
	OpStatus Op = "status"
)

// EventKind is the last token of an event subject (EventSubject).
type EventKind string

const (
	EventAttached   EventKind = "attached"
	EventDetached   EventKind = "detached"
	EventReconciled EventKind = "reconciled"
	EventError      EventKind = "error"
)

// NodeToken turns a Kubernetes node name into one subject token. Node names
// are DNS subdomains ([a-z0-9.-]); '.' separates NATS tokens, so it becomes
// '_', which node names never contain, keeping the mapping one-to-one.
// Anything else that NATS treats specially is replaced too.
func NodeToken(node string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		default:
			return r
		}
	}, node)
}

// ServicePrefix is the subject prefix of one engine's adapter on one node:
// usrsp.v1.<node>.<engine>. The micro service adds one endpoint per Op.
func ServicePrefix(node string, e Engine) string {
	return fmt.Sprintf("%s.%s.%s", SubjectRoot, NodeToken(node), e)
}

// Subject is the request subject of op on node's adapter for engine e.
func Subject(node string, e Engine, op Op) string {
	return ServicePrefix(node, e) + "." + string(op)
}

// EventSubject is where an adapter publishes events of one kind:
// usrsp.v1.<node>.<engine>.event.<kind>.
func EventSubject(node string, e Engine, kind EventKind) string {
	return ServicePrefix(node, e) + ".event." + string(kind)
}

// AllEventsSubject matches every event of every adapter on every node
// (`nats sub 'usrsp.v1.*.*.event.>'`).
const AllEventsSubject = SubjectRoot + ".*.*.event.>"

// ServiceName is the micro service name of an engine's adapter.
func ServiceName(e Engine) string {
	return "usrsp-" + string(e) + "-adapter"
}
