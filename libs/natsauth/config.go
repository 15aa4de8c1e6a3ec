package natsauth

import (
	"fmt"
	"strings"
)

// ServerConfig describes a hub server (one of the NATS cluster's servers,
// or the single node-local server of today's deploy).
type ServerConfig struct {
	Listen     string // client listen host:port; "" leaves the server default
	LeafListen string // host:port to accept leaf nodes on; "" accepts none
	TLS        *TLS   // server certificate; CAFile set: clients must present a certificate it signed
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
	return b.String()
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
