// Command usrsp-nats-creds mints usrsp's NATS identities (see
// libs/natsauth). Run it on an operator's machine, not on a node: the
// authority directory holds the account signing key, which can mint any
// identity.
//
//	usrsp-nats-creds init -dir auth                      # operator, account and system keys + JWTs
//	usrsp-nats-creds node -dir auth -out creds node-1    # creds/node-1/{cni,adapter,leaf}.creds
//	usrsp-nats-creds operator -dir auth -out creds alice # creds/operator-alice.creds
//	usrsp-nats-creds server-config -dir auth > nats.conf # hub server: trust + accounts (public JWTs only)
//	usrsp-nats-creds server-config -dir auth -routes nats-0:6222,nats-1:6222,nats-2:6222 -leaf-listen 0.0.0.0:7422 > cluster.conf
//	usrsp-nats-creds leaf-config -dir auth -hub nats-leaf://hub:7422 -creds /etc/usrsp/nats/leaf.creds > leaf.conf
//	usrsp-nats-creds revoke -dir auth UABC...            # then re-render and reload the server configs
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/tools/version"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // the flag set printed its usage
		}
		fmt.Fprintln(os.Stderr, "usrsp-nats-creds:", err)
		os.Exit(2)
	}
}

const usage = `usage: usrsp-nats-creds <command> [flags] [args]
commands:
  init           create the authority (operator, account, signing and system keys) in -dir
  node NODE...   mint NODE's cni, adapter and leaf .creds into -out/NODE/
  operator NAME  mint a read-only operator identity into -out/operator-NAME.creds
  server-config  print the configuration of a hub nats-server (-routes: of a cluster's server)
  leaf-config    print the configuration of a node's leaf nats-server
  revoke UKEY... revoke users by public key (printed by node/operator)
  version        print the version
run "usrsp-nats-creds <command> -h" for its flags`

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-version":
		_, err := fmt.Fprintf(stdout, "usrsp-nats-creds %s (contracts API %s)\n", version.Version, contracts.APIVersion)
		return err
	case "help", "--help", "-help", "-h":
		_, err := fmt.Fprintln(stdout, usage)
		return err
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	dir := fs.String("dir", "nats-authority", "authority directory (private: holds the account signing key)")
	// load parses the flags and reads the authority.
	load := func() (*natsauth.Authority, error) {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return natsauth.LoadAuthority(*dir)
	}
	switch cmd {
	case "init":
		name := fs.String("name", "usrsp", "operator name in its JWT")
		if err := fs.Parse(args); err != nil {
			return err
		}
		a, err := natsauth.NewAuthority(*name)
		if err != nil {
			return err
		}
		if err := a.Save(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "authority in %s (account %s); keep it off the nodes\n", *dir, a.AccountPublicKey())
		return nil
	case "node", "operator":
		out := fs.String("out", "creds", "directory to write .creds into")
		ttl := fs.Duration("ttl", 0, "validity of the credentials (0: until revoked)")
		a, err := load()
		if err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return fmt.Errorf("%s: give at least one name", cmd)
		}
		for _, name := range fs.Args() {
			if err := mint(a, cmd, name, *out, *ttl, stdout); err != nil {
				return err
			}
		}
		return nil
	case "server-config":
		var c natsauth.ServerConfig
		fs.StringVar(&c.Listen, "listen", "", "client listen host:port (default: the server's)")
		fs.StringVar(&c.LeafListen, "leaf-listen", "", "accept leaf nodes on host:port")
		var cl natsauth.Cluster
		fs.StringVar(&cl.Name, "cluster-name", "usrsp", "cluster name (with -routes)")
		fs.StringVar(&cl.Listen, "cluster-listen", "0.0.0.0:6222", "route listen host:port (with -routes)")
		routes := fs.String("routes", "", "host:port of every cluster server's route listener, comma-separated; "+
			"makes a cluster server whose config holds the route password (a secret)")
		tls := tlsFlags(fs, "server certificate (also for routes)", "CA of client certificates (makes them required, for routes too)")
		a, err := load()
		if err != nil {
			return err
		}
		c.TLS = tls()
		if *routes != "" {
			cl.Routes = strings.Split(*routes, ",")
			if cl.Name == "" || cl.Listen == "" {
				return errors.New("server-config: -routes needs -cluster-name and -cluster-listen")
			}
			c.Cluster = &cl
		}
		_, err = io.WriteString(stdout, a.ServerConfig(c))
		return err
	case "leaf-config":
		var c natsauth.LeafConfig
		fs.StringVar(&c.Listen, "listen", "127.0.0.1:4222", "client listen host:port on the node")
		hubs := fs.String("hub", "", "hub leafnode URLs, comma-separated (nats-leaf://host:7422)")
		fs.StringVar(&c.CredsFile, "creds", "/etc/usrsp/nats/leaf.creds", "path of the node's leaf.creds on the node")
		tls := tlsFlags(fs, "client certificate for the hubs", "CA that signed the hubs' certificates")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *hubs == "" {
			return errors.New("leaf-config: -hub is required")
		}
		a, err := natsauth.LoadAuthority(*dir)
		if err != nil {
			return err
		}
		c.HubURLs = strings.Split(*hubs, ",")
		c.TLS = tls()
		_, err = io.WriteString(stdout, a.LeafConfig(c))
		return err
	case "revoke":
		a, err := load()
		if err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("revoke: name at least one user public key")
		}
		if err := a.ReissueAccount(fs.Args()); err != nil {
			return err
		}
		if err := a.SaveAccount(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d user(s); re-render server-config and leaf-config and reload the servers\n", fs.NArg())
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// mint writes the .creds of one node (all its roles) or one operator.
func mint(a *natsauth.Authority, cmd, name, out string, ttl time.Duration, stdout io.Writer) error {
	type file struct {
		id   natsauth.Identity
		path string
	}
	var files []file
	if cmd == "operator" {
		id := natsauth.Identity{Role: natsauth.RoleOperator, Name: name}
		files = append(files, file{id, filepath.Join(out, "operator-"+name+".creds")})
	} else {
		for _, r := range natsauth.NodeRoles {
			id := natsauth.Identity{Role: r, Name: name}
			files = append(files, file{id, filepath.Join(out, name, string(r)+".creds")})
		}
	}
	for _, f := range files {
		creds, pub, err := a.Mint(f.id, ttl)
		if err != nil {
			return err
		}
		if err := natsauth.WriteCreds(f.path, creds); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\tinbox %s\tuser %s\n", f.path, f.id.UserName(), f.id.InboxPrefix(), pub)
	}
	return nil
}

// tlsFlags adds -tls-ca, -tls-cert and -tls-key; the returned func gives
// nil when none is set.
func tlsFlags(fs *flag.FlagSet, certHelp, caHelp string) func() *natsauth.TLS {
	var t natsauth.TLS
	fs.StringVar(&t.CertFile, "tls-cert", "", certHelp+" (PEM)")
	fs.StringVar(&t.KeyFile, "tls-key", "", "key of -tls-cert (PEM)")
	fs.StringVar(&t.CAFile, "tls-ca", "", caHelp+" (PEM)")
	return func() *natsauth.TLS {
		if t == (natsauth.TLS{}) {
			return nil
		}
		return &t
	}
}
