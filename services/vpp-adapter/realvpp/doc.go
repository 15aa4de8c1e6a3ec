// Package realvpp holds the real-VPP suite of the vpp-adapter (tests only).
// It runs when USRSP_VPP_BIN points at a vpp binary built for VPP 25.10
// (and USRSP_VPP_PLUGIN_PATH at its plugin directory) and skips otherwise:
//
//	USRSP_VPP_BIN=/usr/bin/vpp USRSP_VPP_PLUGIN_PATH=/usr/lib/x86_64-linux-gnu/vpp_plugins \
//	  go test -race -count=1 -v ./realvpp/
package realvpp
