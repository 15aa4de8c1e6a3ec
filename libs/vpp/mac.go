package vpp

import (
	"fmt"
	"net"

	"go.fd.io/govpp/binapi/ethernet_types"
)

// ParseMAC parses a 48-bit MAC address the way VPP takes it; "" is nil
// (VPP picks one).
func ParseMAC(s string) (*ethernet_types.MacAddress, error) {
	if s == "" {
		return nil, nil
	}
	hw, err := net.ParseMAC(s)
	if err == nil && len(hw) != 6 {
		err = fmt.Errorf("%q is not a 48-bit MAC address", s)
	}
	if err != nil {
		return nil, err
	}
	m := ethernet_types.MacAddress(hw)
	return &m, nil
}
