package natsauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// ServerConfig describes a hub server: one of the NATS cluster's servers
// (Cluster set), or a single server.
type ServerConfig struct {
	Listen     string   // client listen host:port; "" leaves the server default
	LeafListen string   // host:port to accept leaf nodes on; "" accepts none
	TLS        *TLS     // server certificate; CAFile set: clients must present a certificate it signed
	Cluster    *Cluster // routes to the other servers of the cluster; nil: a single server
}

// Cluster makes a hub one server of a NATS cluster. Every server gets the
// same configuration: the route list names all of them, and nats-server
// ignores the route to itself.
type Cluster struct {
	Name   string   // cluster name, the same on every server
	Listen string   // host:port of the route listener, e.g. 0.0.0.0:6222
	Routes []string // host:port of every server's route listener
}

// RouteUser is the user the cluster's servers present to each other.
const RouteUser = "route"

// RoutePassword is the password of RouteUser. Routes carry every message
// unfiltered, so they must not be open to anything that reaches the route
// port. It is derived from the system account's seed: the same on every
// re-render (a reload after a revocation keeps the cluster together), and
// private like the seed, so the rendered cluster configuration is a secret.
func (a *Authority) RoutePassword() string {
	seed, _ := a.System.Seed()
	m := hmac.New(sha256.New, seed)
	m.Write([]byte("usrsp nats cluster routes"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ServerConfig renders a nats-server configuration (the format of
// `nats-server -c`) that trusts the operator and resolves the USRSP and
// system accounts from memory. It contains public JWTs only.
func (a *Authority) ServerConfig(c ServerConfig) string {
	var b strings.Builder
	a.writeTrust(&b)
	if c.Listen != "" {
		fmt.Fprintf(&b, "listen: %q\n", c.Listen)
	}
	if c.TLS != nil {
		c.TLS.writeServerBlock(&b, "")
	}
	if c.LeafListen != "" {
		fmt.Fprintf(&b, "leafnodes {\n  listen: %q\n", c.LeafListen)
		if c.TLS != nil {
			c.TLS.writeServerBlock(&b, "  ")
		}
		b.WriteString("}\n")
	}
	if c.Cluster != nil {
		a.writeCluster(&b, c.Cluster, c.TLS)
	}
	return b.String()
}

// writeCluster renders the cluster block: route listener, the routes'
// password and the routes with it; TLS (mutual when CAFile is set) like
// the clients'.
func (a *Authority) writeCluster(b *strings.Builder, c *Cluster, tls *TLS) {
	pw := a.RoutePassword()
	fmt.Fprintf(b, "cluster {\n  name: %q\n  listen: %q\n", c.Name, c.Listen)
	fmt.Fprintf(b, "  authorization {\n    user: %q\n    password: %q\n  }\n", RouteUser, pw)
	b.WriteString("  routes: [\n")
	for _, r := range c.Routes {
		fmt.Fprintf(b, "    %q\n", "nats-route://"+RouteUser+":"+pw+"@"+r)
	}
	b.WriteString("  ]\n")
	if tls != nil {
		tls.writeServerBlock(b, "  ")
	}
	b.WriteString("}\n")
}

// LeafConfig describes the leaf server of one node.
type LeafConfig struct {
	Listen    string   // client listen host:port on the node, e.g. 127.0.0.1:4222
	HubURLs   []string // nats-leaf://host:7422 of the hub servers
	CredsFile string   // the node's RoleLeaf .creds, on the node
	TLS       *TLS     // CAFile verifies the hubs; CertFile/KeyFile if the hubs verify clients
}

// LeafConfig renders the configuration of a node's leaf server. Local
// clients authenticate with the same .creds as on the hub (same operator
// and account JWTs); the leaf reaches the hub as the node's leaf user,
// whose permissions the hub enforces.
func (a *Authority) LeafConfig(c LeafConfig) string {
	var b strings.Builder
	a.writeTrust(&b)
	if c.Listen != "" {
		fmt.Fprintf(&b, "listen: %q\n", c.Listen)
	}
	b.WriteString("leafnodes {\n  remotes: [\n    {\n      urls: [")
	for i, u := range c.HubURLs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", u)
	}
	fmt.Fprintf(&b, "]\n      credentials: %q\n      account: %q\n", c.CredsFile, a.AccountPublicKey())
	if c.TLS != nil {
		fmt.Fprintf(&b, "      tls {\n        ca_file: %q\n", c.TLS.CAFile)
		if c.TLS.CertFile != "" {
			fmt.Fprintf(&b, "        cert_file: %q\n        key_file: %q\n", c.TLS.CertFile, c.TLS.KeyFile)
		}
		b.WriteString("      }\n")
	}
	b.WriteString("    }\n  ]\n}\n")
	return b.String()
}

func (a *Authority) writeTrust(b *strings.Builder) {
	sysPub, _ := a.System.PublicKey()
	fmt.Fprintf(b, "operator: %q\nsystem_account: %q\nresolver: MEMORY\nresolver_preload: {\n", a.OperatorJWT, sysPub)
	fmt.Fprintf(b, "  %s: %q\n  %s: %q\n}\n", a.AccountPublicKey(), a.AccountJWT, sysPub, a.SystemJWT)
}
