package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"usrsp.dev/contracts"
	"usrsp.dev/services/pod-consumer/internal/discovery"
)

func runList(_ context.Context, args []string, env Env) error {
	fs, c := newFlags("list", env)
	ifs, err := c.parseDiscover(fs, args)
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(env.Stdout, ifs)
	}
	if len(ifs) == 0 {
		fmt.Fprintf(env.Stdout, "no userspace interfaces (no %s in %s)\n", contracts.PodDataGlob, c.dir)
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	for _, i := range ifs {
		fmt.Fprintln(tw, describe(i))
	}
	return tw.Flush()
}

// describe is one line about an interface: name, type and role, socket,
// addresses, host engine and network.
func describe(i discovery.Interface) string {
	if i.Data == nil {
		di := i.DeviceInfo()
		switch {
		case di != nil && di.Memif != nil:
			return fmt.Sprintf("%s\tmemif %s %s\t%s\t\t(network-status only)", i.Name, di.Memif.Role, di.Memif.Mode, di.Memif.Path)
		case di != nil && di.VhostUser != nil:
			return fmt.Sprintf("%s\tvhost-user %s\t%s\t\t(network-status only)", i.Name, di.VhostUser.Mode, di.VhostUser.Path)
		}
		return i.Name + "\t?\t\t\t(network-status only)"
	}
	d := i.Data
	c := d.Interface
	kind := ""
	switch {
	case c.Memif != nil:
		kind = fmt.Sprintf("memif %s id=%d %s q=%d", c.Memif.Role, c.Memif.ID, c.Memif.Mode, max(c.Memif.Queues, 1))
	case c.Vhost != nil:
		kind = fmt.Sprintf("vhost-user %s q=%d", c.Vhost.Mode, max(c.Vhost.Queues, 1))
	}
	var ips []string
	if d.IPAM != nil {
		for _, ip := range d.IPAM.IPs {
			ips = append(ips, ip.Address)
		}
	}
	addr := strings.Join(ips, ",")
	if addr == "" {
		addr = "no-ip"
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\thost=%s network=%s", i.Name, kind, c.SocketPath, addr, d.HostEngine, d.Network)
}
