// Package dpdkargs turns the pod's interfaces into the EAL arguments a DPDK
// application needs to open them: one --vdev per interface (net_memif or
// net_virtio_user) in the role opposite to the host's.
package dpdkargs

import (
	"fmt"
	"math/bits"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/services/pod-consumer/internal/discovery"
)

// Vdev is the --vdev of one interface.
type Vdev struct {
	IfName string `json:"ifName"`
	Device string `json:"device"` // DPDK device name, e.g. net_memif0
	Args   string `json:"args"`   // the whole --vdev value
	Queues int    `json:"queues"`
}

// Args is everything a DPDK app in the pod needs.
type Args struct {
	Vdevs []Vdev `json:"vdevs"`
	// EAL are the EAL arguments (--vdev=...).
	EAL []string `json:"eal"`
	// App are testpmd-style hints (--rxq/--txq) for apps that otherwise use
	// one queue; empty when every interface has one queue pair.
	App []string `json:"app,omitempty"`
}

// Build returns the arguments for ifs, in order. Memif devices are numbered
// net_memif0.., virtio_user devices net_virtio_user0..
func Build(ifs []discovery.Interface) (Args, error) {
	var a Args
	var memifs, vhosts, maxQueues int
	for _, i := range ifs {
		s, err := specOf(i)
		if err != nil {
			return Args{}, err
		}
		if s.IfType == contracts.IfTypeVeth {
			continue // a kernel netdev: nothing for DPDK's EAL
		}
		var v Vdev
		switch s.IfType {
		case contracts.IfTypeMemif:
			v, err = memifVdev(i.Name, memifs, s)
			memifs++
		case contracts.IfTypeVhostUser:
			v = vhostVdev(i.Name, vhosts, s)
			vhosts++
		}
		if err != nil {
			return Args{}, err
		}
		a.Vdevs = append(a.Vdevs, v)
		a.EAL = append(a.EAL, "--vdev="+v.Args)
		maxQueues = max(maxQueues, v.Queues)
	}
	if maxQueues > 1 {
		a.App = []string{fmt.Sprintf("--rxq=%d", maxQueues), fmt.Sprintf("--txq=%d", maxQueues)}
	}
	return a, nil
}

// Line is the arguments as one shell-ready line: the EAL arguments and,
// unless ealOnly, " -- " and the app hints.
func (a Args) Line(ealOnly bool) string {
	words := append([]string(nil), a.EAL...)
	if !ealOnly && len(a.App) > 0 {
		words = append(append(words, "--"), a.App...)
	}
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

// specOf is the pod side of i: from the pod data, or, for an interface
// known only from the network-status annotation, from its device-info with
// protocol defaults for the rest.
func specOf(i discovery.Interface) (contracts.ContainerInterface, error) {
	if i.Data != nil {
		return i.Data.Interface, nil
	}
	di := i.DeviceInfo()
	switch {
	case di != nil && di.Type == "memif" && di.Memif != nil:
		role, ok := normalizeRole(di.Memif.Role)
		if !ok {
			return contracts.ContainerInterface{}, contracts.Errorf(contracts.CodeDecode,
				"%s: network-status device-info memif.role %q is not master/slave (server/client)", i.Name, di.Memif.Role)
		}
		return contracts.ContainerInterface{IfType: contracts.IfTypeMemif, SocketPath: di.Memif.Path,
			Memif: &contracts.MemifSpec{Role: role, Mode: di.Memif.Mode}}, nil
	case di != nil && di.Type == "vhost-user" && di.VhostUser != nil:
		return contracts.ContainerInterface{IfType: contracts.IfTypeVhostUser, SocketPath: di.VhostUser.Path,
			Vhost: &contracts.VhostSpec{Mode: di.VhostUser.Mode}}, nil
	}
	return contracts.ContainerInterface{}, contracts.Errorf(contracts.CodeNotFound, "%s: no pod data file and no usable device-info", i.Name)
}

func normalizeRole(r string) (string, bool) {
	switch r {
	case contracts.MemifRoleMaster, "server", "primary":
		return contracts.MemifRoleMaster, true
	case contracts.MemifRoleSlave, "client", "secondary":
		return contracts.MemifRoleSlave, true
	}
	return "", false
}

// memifVdev builds net_memif devargs (DPDK 22.11 names: role, id, socket,
// socket-abstract, secret, rsize = log2 of the ring size, bsize, mac).
// Memif master is DPDK's server, slave its client.
func memifVdev(ifName string, n int, s contracts.ContainerInterface) (Vdev, error) {
	m := s.Memif
	role := "client"
	if m.Role == contracts.MemifRoleMaster {
		role = "server"
	}
	socket, abstract := s.SocketPath, "no"
	if name, ok := strings.CutPrefix(socket, "@"); ok {
		socket, abstract = name, "yes"
	}
	// DPDK's kvargs parser splits on ',' and '=' and has no escaping.
	if strings.ContainsAny(socket, ",=") || strings.ContainsAny(m.Secret, ",=") {
		return Vdev{}, contracts.Errorf(contracts.CodeInvalidConfig, "%s: socket path or memif secret contains ',' or '=', which DPDK devargs cannot carry", ifName)
	}
	dev := fmt.Sprintf("net_memif%d", n)
	args := fmt.Sprintf("%s,role=%s,id=%d,socket=%s,socket-abstract=%s", dev, role, m.ID, socket, abstract)
	if m.Secret != "" {
		args += ",secret=" + m.Secret
	}
	if m.RingSize > 0 {
		if m.RingSize&(m.RingSize-1) != 0 {
			return Vdev{}, contracts.Errorf(contracts.CodeInvalidConfig, "%s: interface.memif.ringSize %d is not a power of two", ifName, m.RingSize)
		}
		args += fmt.Sprintf(",rsize=%d", bits.TrailingZeros(uint(m.RingSize)))
	}
	if m.BufferSize > 0 {
		args += fmt.Sprintf(",bsize=%d", m.BufferSize)
	}
	if s.MAC != "" {
		args += ",mac=" + s.MAC
	}
	return Vdev{IfName: ifName, Device: dev, Args: args, Queues: max(m.Queues, 1)}, nil
}

// vhostVdev builds net_virtio_user devargs: the pod is the vhost-user
// server (server=1, it creates the socket) when the host is the client.
// The pod data has no vhost ring size, so queue_size is DPDK's default.
func vhostVdev(ifName string, n int, s contracts.ContainerInterface) Vdev {
	v := s.Vhost
	server := 0
	if v.Mode == contracts.VhostModeServer {
		server = 1
	}
	queues := max(v.Queues, 1)
	dev := fmt.Sprintf("net_virtio_user%d", n)
	args := fmt.Sprintf("%s,path=%s,server=%d,queues=%d", dev, s.SocketPath, server, queues)
	if s.MAC != "" {
		args += ",mac=" + s.MAC
	}
	return Vdev{IfName: ifName, Device: dev, Args: args, Queues: queues}
}

// shellQuote quotes w for a POSIX shell unless it is made only of
// characters that need no quoting.
func shellQuote(w string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=,./:@+%", r)
	}
	if w != "" && strings.IndexFunc(w, func(r rune) bool { return !safe(r) }) < 0 {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
