// Package vpp drives one VPP instance through govpp's generated RPC clients:
// one small function per VPP operation, VPP errors mapped to contract codes,
// and a connection loop that reconnects with backoff.
package vpp

import (
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/arp"
	"go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip6_nd"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vpe"
)

// BuiltFor is the VPP release whose binary API the adapter is generated
// against (go.fd.io/govpp v0.13.0 binapi: "VPP: 25.10-release").
const BuiltFor = "25.10"

// Messages are every request and reply the adapter sends or expects. On
// each connect they are checked against the running VPP by name and CRC.
func Messages() []api.Message {
	return []api.Message{
		&memclnt.ControlPing{}, &memclnt.ControlPingReply{},
		&vpe.ShowVersion{}, &vpe.ShowVersionReply{},
		&memif.MemifSocketFilenameAddDelV2{}, &memif.MemifSocketFilenameAddDelV2Reply{},
		&memif.MemifSocketFilenameDump{}, &memif.MemifSocketFilenameDetails{},
		&memif.MemifCreateV2{}, &memif.MemifCreateV2Reply{},
		&memif.MemifDelete{}, &memif.MemifDeleteReply{},
		&memif.MemifDump{}, &memif.MemifDetails{},
		&vhost_user.CreateVhostUserIfV2{}, &vhost_user.CreateVhostUserIfV2Reply{},
		&vhost_user.DeleteVhostUserIf{}, &vhost_user.DeleteVhostUserIfReply{},
		&interfaces.SwInterfaceDump{}, &interfaces.SwInterfaceDetails{},
		&interfaces.SwInterfaceTagAddDel{}, &interfaces.SwInterfaceTagAddDelReply{},
		&interfaces.SwInterfaceSetFlags{}, &interfaces.SwInterfaceSetFlagsReply{},
		&interfaces.SwInterfaceAddDelAddress{}, &interfaces.SwInterfaceAddDelAddressReply{},
		&interfaces.SwInterfaceSetTable{}, &interfaces.SwInterfaceSetTableReply{},
		&l2.BridgeDomainAddDelV2{}, &l2.BridgeDomainAddDelV2Reply{},
		&l2.BridgeDomainDump{}, &l2.BridgeDomainDetails{},
		&l2.SwInterfaceSetL2Bridge{}, &l2.SwInterfaceSetL2BridgeReply{},
		&l2.L2InterfaceVlanTagRewrite{}, &l2.L2InterfaceVlanTagRewriteReply{},
		&l2.L2InterfaceEfpFilter{}, &l2.L2InterfaceEfpFilterReply{},
		&ip.IPRouteAddDel{}, &ip.IPRouteAddDelReply{},
		&ip.IPTableAddDel{}, &ip.IPTableAddDelReply{},
		&ip.IPAddressDump{}, &ip.IPAddressDetails{},
		&ip.SwInterfaceIP6EnableDisable{}, &ip.SwInterfaceIP6EnableDisableReply{},
		&interfaces.CreateLoopback{}, &interfaces.CreateLoopbackReply{},
		&interfaces.DeleteLoopback{}, &interfaces.DeleteLoopbackReply{},
		&interfaces.SwInterfaceSetUnnumbered{}, &interfaces.SwInterfaceSetUnnumberedReply{},
		&interfaces.SwInterfaceSetMtu{}, &interfaces.SwInterfaceSetMtuReply{},
		&arp.ProxyArpAddDel{}, &arp.ProxyArpAddDelReply{},
		&arp.ProxyArpIntfcEnableDisable{}, &arp.ProxyArpIntfcEnableDisableReply{},
		&ip6_nd.IP6ndProxyEnableDisable{}, &ip6_nd.IP6ndProxyEnableDisableReply{},
	}
}
