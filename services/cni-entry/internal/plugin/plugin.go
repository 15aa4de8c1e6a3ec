// Package plugin implements the userspace CNI verbs. The binary's main is a
// single skel call with the methods of a Plugin built by New; tests build a
// Plugin with other dependencies.
package plugin

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/cnierr"
	"usrsp.dev/services/cni-entry/internal/config"
	"usrsp.dev/services/cni-entry/internal/poddata"
)

// About is printed by the binary when run without CNI_COMMAND.
const About = "usrsp userspace CNI plugin (memif and vhost-user on VPP and OVS-DPDK)"

// SupportedVersions are the CNI spec versions the plugin speaks.
var SupportedVersions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// IPAMTimeout bounds one IPAM plugin run.
const IPAMTimeout = 30 * time.Second

// Adapter is the part of *contracts.Client cni-entry uses.
type Adapter interface {
	Attach(context.Context, contracts.Engine, *contracts.AttachRequest) (*contracts.AttachResponse, error)
	Detach(context.Context, contracts.Engine, *contracts.DetachRequest) (*contracts.DetachResponse, error)
	Check(context.Context, contracts.Engine, *contracts.CheckRequest) (*contracts.CheckResponse, error)
	List(context.Context, contracts.Engine, *contracts.ListRequest) (*contracts.ListResponse, error)
	GC(context.Context, contracts.Engine, *contracts.GCRequest) (*contracts.GCResponse, error)
	Status(context.Context, contracts.Engine) (*contracts.StatusResponse, error)
}

var _ Adapter = (*contracts.Client)(nil)

// Dialer connects to the adapters of one node.
type Dialer interface {
	// Dial returns the node's adapters and a func that closes the
	// connection. Failure is a contracts error (CodeTryAgainLater).
	Dial(n config.NATS, node string) (Adapter, func(), error)
}

// NATSDialer dials NATS once per invocation, without reconnecting. Replies
// come to the inbox of the node's cni identity (contracts.InboxPrefix: the
// only one cni@<node> credentials may read), derived from the node name,
// so no JWT is parsed per CNI call.
type NATSDialer struct{}

// Dial implements Dialer.
func (NATSDialer) Dial(n config.NATS, node string) (Adapter, func(), error) {
	nc, err := contracts.Connect(contracts.ConnectOptions{
		URL: n.URL, CredentialsFile: n.CredentialsFile, Timeout: n.TimeoutDuration, Name: "usrsp-cni-entry",
		InboxPrefix: contracts.InboxPrefix(contracts.RoleCNI, node),
		TLS:         n.TLS,
	})
	if err != nil {
		return nil, nil, err
	}
	return contracts.NewClient(nc, node, n.TimeoutDuration), nc.Close, nil
}

// Plugin runs the CNI verbs with its dependencies.
type Plugin struct {
	Dialer   Dialer
	IPAM     IPAM
	Hostname func() (string, error)
	Stdout   io.Writer // the CNI result and nothing else
	Stderr   io.Writer // logs
}

// New returns the production Plugin: NATS, IPAM plugins run from
// CNI_PATH, the result on stdout.
func New(stdout, stderr io.Writer) *Plugin {
	return &Plugin{Dialer: NATSDialer{}, IPAM: ExecIPAM{}, Hostname: os.Hostname, Stdout: stdout, Stderr: stderr}
}

// The CNI verbs, each in its own file: run loads the configuration and
// sets up logging, then the verb does its work top to bottom.
func (p *Plugin) Add(args *skel.CmdArgs) error    { return p.run("ADD", args, p.add) }
func (p *Plugin) Del(args *skel.CmdArgs) error    { return p.run("DEL", args, p.del) }
func (p *Plugin) Check(args *skel.CmdArgs) error  { return p.run("CHECK", args, p.check) }
func (p *Plugin) GC(args *skel.CmdArgs) error     { return p.run("GC", args, p.gc) }
func (p *Plugin) Status(args *skel.CmdArgs) error { return p.run("STATUS", args, p.status) }

// invocation is the state of one verb run.
type invocation struct {
	verb  string
	args  *skel.CmdArgs
	conf  *config.NetConf
	key   contracts.AttachmentKey
	node  string
	log   zerolog.Logger
	close func() // closes the log file
	start time.Time

	adapter   Adapter // connected on first use by connect
	closeConn func()
}

// run loads the configuration, sets up logging, runs fn, and logs its
// outcome once: this is the boundary where an error leaves the process,
// so it is logged here and nowhere below.
func (p *Plugin) run(verb string, args *skel.CmdArgs, fn func(*invocation) error) error {
	start := time.Now()
	conf, err := config.LoadNetConf(args.StdinData, config.Env{IfName: args.IfName, Args: args.Args})
	if err != nil {
		return cnierr.From(err)
	}
	inv := &invocation{verb: verb, args: args, conf: conf, start: start,
		key: contracts.AttachmentKey{ContainerID: args.ContainerID, IfName: args.IfName}}
	inv.log, inv.close = newLogger(p.Stderr, conf, verb)
	defer inv.close()
	defer func() {
		if inv.closeConn != nil {
			inv.closeConn()
		}
	}()
	inv.log = inv.log.With().Str("container_id", args.ContainerID).Str("ifname", args.IfName).
		Str("engine", conf.Host.Engine).Str("network", conf.Name).Logger()
	inv.node = conf.NodeName
	if inv.node == "" {
		if inv.node, err = p.Hostname(); err != nil {
			err = contracts.Errorf(contracts.CodeInvalidEnv, "nodeName is not set and the host name is unknown: %v", err)
		}
	}
	if err == nil {
		err = cnierr.From(fn(inv))
	}
	if err != nil {
		inv.log.Error().Err(err).Dur("duration", time.Since(start)).Msg(verb + " failed")
		return err
	}
	inv.log.Info().Dur("duration", time.Since(start)).Msg(verb + " done")
	return nil
}

// connect returns the node's adapters, dialing on first use: a verb that
// never needs them (a DEL whose IPAM fails first still calls) dials late,
// and run closes the connection.
func (p *Plugin) connect(inv *invocation) (Adapter, error) {
	if inv.adapter == nil {
		a, closeConn, err := p.Dialer.Dial(inv.conf.NATS, inv.node)
		if err != nil {
			return nil, err
		}
		inv.adapter, inv.closeConn = a, closeConn
	}
	return inv.adapter, nil
}

// call connects to the node's adapters and makes one request of this
// network's engine, logging its subject and duration at debug level.
func call[Resp any](p *Plugin, inv *invocation, op contracts.Op,
	request func(Adapter, context.Context, contracts.Engine) (*Resp, error)) (*Resp, error) {
	adapter, err := p.connect(inv)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := request(adapter, context.Background(), inv.conf.Engine())
	inv.log.Debug().Str("subject", inv.subject(op)).Dur("duration", time.Since(start)).Err(err).Msg(string(op))
	return resp, err
}

// subject is the subject of op, for logs.
func (inv *invocation) subject(op contracts.Op) string {
	return contracts.Subject(inv.node, inv.conf.Engine(), op)
}

// ipamArgs are the CNI environment for the IPAM plugin of key.
func (inv *invocation) ipamArgs(key contracts.AttachmentKey) *invoke.Args {
	netns := ""
	if key == inv.key {
		netns = inv.args.Netns
	}
	return &invoke.Args{ContainerID: key.ContainerID, IfName: key.IfName, NetNS: netns,
		PluginArgsStr: inv.args.Args, Path: inv.args.Path}
}

// layout is where pod directories are.
func (inv *invocation) layout() poddata.Layout {
	c := inv.conf
	return poddata.Layout{SharedDir: c.SharedDir, PodVolume: c.PodVolume, KubeletDir: c.KubeletDir, LinkDir: c.LinkDir}
}

// deviceInfoFile is where the device info of key goes: the runtime's
// choice, else deviceInfoDir, else nowhere.
func (inv *invocation) deviceInfoFile(key contracts.AttachmentKey) string {
	c := inv.conf
	if c.RuntimeConfig.CNIDeviceInfoFile != "" && key == inv.key {
		return c.RuntimeConfig.CNIDeviceInfoFile
	}
	if c.DeviceInfoDir != "" {
		return c.DeviceInfoDir + "/" + c.Name + "-" + key.ContainerID + "-" + key.IfName + "-device.json"
	}
	return ""
}
