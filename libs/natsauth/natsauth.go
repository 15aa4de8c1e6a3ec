// Package natsauth defines who may say what on usrsp's NATS, and mints the
// credentials and server configuration that make nats-server enforce it.
//
// # Decision: JWT accounts (operator mode), not nkeys in the server config
//
// Every identity is a NATS user JWT signed by the signing key of one
// account ("USRSP"), which the operator key signed. The permissions travel
// inside the signed user JWT, so:
//
//   - a node joining the cluster needs new credentials minted offline, but
//     no change to any server's configuration (with nkeys, every server's
//     authorization block would list every node's users and be reloaded on
//     every join/leave);
//   - a node holds only its own users' seeds (.creds). A user seed cannot
//     sign another user: only the account signing key can, and it stays with
//     whoever runs usrsp-nats-creds. Servers hold public JWTs only;
//   - a per-node leaf server (later deploy issue) trusts the same operator
//     and account JWT, so cni-entry and the adapter present the same .creds
//     to the leaf as to the hub, and the leaf authenticates to the hub with
//     the node's leaf user, whose permissions bound what the leaf can export
//     to and import from the hub: the hub enforces them, so root on node A
//     reconfiguring its leaf still cannot reach node B;
//   - revocation is a change of the account JWT (its revocation list),
//     re-rendered into the servers' configuration (MEMORY resolver) and
//     reloaded; expiry is in each user JWT.
//
// # Identities
//
// See Identity.Permissions for the exact subjects. In short, on node N:
// cni-entry may request N's adapter operations and read replies on its own
// inbox prefix; the adapter may serve N's operations and micro's $SRV
// verbs, publish N's events and N's discovery announcement, answer the
// requests it received (allow_responses) and read every node's
// announcement; the leaf user of N is the union of both, plus sending into
// N's own inboxes and the operators' (replies crossing the leaf need it).
// An operator may read every event and announcement and send $SRV
// discovery requests, and nothing else. Each identity has its own inbox prefix (InboxPrefix) and
// nobody may subscribe to _INBOX.> or another identity's prefix.
package natsauth

import (
	"fmt"
	"regexp"

	"github.com/nats-io/jwt/v2"

	"usrsp.dev/contracts"
)

// Role is what an identity is for.
type Role string

const (
	// RoleCNI is cni-entry on one node: it sends requests to that node's adapters.
	RoleCNI Role = contracts.RoleCNI
	// RoleAdapter is the vpp/ovs adapter of one node: it serves that node's subjects.
	RoleAdapter Role = contracts.RoleAdapter
	// RoleLeaf is the leaf server of one node connecting to the hub cluster.
	RoleLeaf Role = "leaf"
	// RoleOperator is a human or tool that watches events and discovers services.
	RoleOperator Role = "operator"
)

// NodeRoles are the identities minted for every node.
var NodeRoles = []Role{RoleCNI, RoleAdapter, RoleLeaf}

// Identity is one NATS user: a role on a node (or, for RoleOperator, a
// free-form operator name).
type Identity struct {
	Role Role
	Name string // Kubernetes node name, or the operator's name
}

// nameRE accepts Kubernetes node names (DNS subdomains) and simple operator names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// Validate checks the role and the name.
func (id Identity) Validate() error {
	switch id.Role {
	case RoleCNI, RoleAdapter, RoleLeaf, RoleOperator:
	default:
		return fmt.Errorf("identity role %q: want one of cni, adapter, leaf, operator", id.Role)
	}
	if !nameRE.MatchString(id.Name) {
		return fmt.Errorf("identity name %q: want a DNS subdomain (lower-case letters, digits, '.', '-')", id.Name)
	}
	return nil
}

// UserName is the user's name in its JWT and the server's logs.
func (id Identity) UserName() string { return string(id.Role) + "@" + id.Name }

// InboxPrefix is the identity's own reply inbox prefix
// (nats.CustomInboxPrefix): contracts.InboxPrefix, _INBOX_<role>.<name
// token>, the formula cni-entry and the adapters use. Its first token
// names the role, so a leaf can be allowed to send replies into every
// operator's inbox (_INBOX_operator.>) without naming each operator, and
// no prefix is a prefix of another's.
func (id Identity) InboxPrefix() string {
	return contracts.InboxPrefix(string(id.Role), id.Name)
}

// OperatorInboxes matches every operator's inbox.
const OperatorInboxes = "_INBOX_" + string(RoleOperator) + ".>"

// RequestSubjects are the subjects of node's adapter operations, for any
// engine: usrsp.v1.<node>.*.<op>.
func RequestSubjects(node string) []string {
	out := make([]string, 0, len(contracts.Ops))
	for _, op := range contracts.Ops {
		out = append(out, contracts.Subject(node, "*", op))
	}
	return out
}

// NodeEventsSubject matches every event of node's adapters.
func NodeEventsSubject(node string) string {
	return contracts.EventSubject(node, "*", ">")
}

// serviceSubjects are what nats.go micro subscribes to for its PING, INFO
// and STATS verbs: $SRV.<VERB>, $SRV.<VERB>.<name>, $SRV.<VERB>.<name>.<id>.
// The id is random per service instance, hence the last wildcard.
func serviceSubjects() []string {
	out := []string{"$SRV.PING", "$SRV.INFO", "$SRV.STATS"}
	for _, e := range contracts.Engines {
		n := contracts.ServiceName(e)
		out = append(out, "$SRV.*."+n, "$SRV.*."+n+".*")
	}
	return out
}

// responses lets a user answer each request it received, once, within the
// server's default window (2 min), and nothing else.
func responses() *jwt.ResponsePermission {
	return &jwt.ResponsePermission{MaxMsgs: 1}
}

// Permissions are the exact publish/subscribe rules of the identity. Only
// allow lists are used: anything not listed is denied.
func (id Identity) Permissions() jwt.Permissions {
	inbox := id.InboxPrefix() + ".>"
	var p jwt.Permissions
	switch id.Role {
	case RoleCNI:
		p.Pub.Allow.Add(RequestSubjects(id.Name)...)
		p.Sub.Allow.Add(inbox)
	case RoleAdapter:
		p.Pub.Allow.Add(NodeEventsSubject(id.Name), contracts.DiscoverySubject(id.Name))
		p.Sub.Allow.Add(RequestSubjects(id.Name)...)
		p.Sub.Allow.Add(serviceSubjects()...)
		p.Sub.Allow.Add(contracts.AllDiscoverySubject, inbox)
		p.Resp = responses()
	case RoleLeaf:
		// Seen from the leaf: pub is what it may export to the hub, sub what
		// it may import. The union of the node's cni and adapter users,
		// plus the inboxes replies are sent to across the leaf: the hub
		// propagates interest to a leaf only for subjects its user may
		// publish, and allow_responses does not count. So the node's own
		// identities' inboxes (cni-entry on the hub, adapter on the leaf)
		// and the operators' ($SRV replies of the node's adapter).
		for _, r := range []Role{RoleCNI, RoleAdapter} {
			q := Identity{Role: r, Name: id.Name}
			p.Pub.Allow.Add(q.Permissions().Pub.Allow...)
			p.Pub.Allow.Add(q.InboxPrefix() + ".>")
			p.Sub.Allow.Add(q.Permissions().Sub.Allow...)
		}
		p.Pub.Allow.Add(OperatorInboxes)
		p.Resp = responses()
	case RoleOperator:
		p.Pub.Allow.Add("$SRV.>")
		p.Sub.Allow.Add(contracts.AllEventsSubject, contracts.AllDiscoverySubject, inbox)
	}
	return p
}

// connectionTypes restricts how the user may connect: the leaf user only
// as a leaf node, the others only as plain clients.
func (id Identity) connectionTypes() jwt.StringList {
	if id.Role == RoleLeaf {
		return jwt.StringList{jwt.ConnectionTypeLeafnode}
	}
	return jwt.StringList{jwt.ConnectionTypeStandard}
}
