package harness

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const forwardStats = `testpmd> stop
Telling cores to stop...
Waiting for lcores to finish...

  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 0              RX-dropped: 0             RX-total: 0
  TX-packets: 2886560        TX-dropped: 118542656     TX-total: 121429216
  ----------------------------------------------------------------------------

  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 0              RX-dropped: 0             RX-total: 0
  TX-packets: 2886560        TX-dropped: 118542656     TX-total: 121429216
  ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++

Done.
testpmd> `

const dumpPortsOut = `OFPST_PORT reply (xid=0x4): 1 ports
  port  2: rx pkts=2886560, bytes=184739840, drop=0, errs=0, frame=?, over=?, crc=?
           tx pkts=62848, bytes=4022272, drop=2823712, errs=?, coll=?
`

// parseCase is one output a parser reads: want, or an error when wantErr.
type parseCase[T any] struct {
	name, out string
	want      T
	wantErr   bool
}

func testParse[T any](t *testing.T, parse func(string) (T, error), cases []parseCase[T]) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.out)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseForwardStats(t *testing.T) {
	testParse(t, ParseForwardStats, []parseCase[TestpmdStats]{
		{"txonly stop", forwardStats, TestpmdStats{TXPackets: 2886560, TXDropped: 118542656}, false},
		{"last block wins", forwardStats + forwardStatsRX, TestpmdStats{RXPackets: 62848}, false},
		{"no statistics", "testpmd> start\ntestpmd> ", TestpmdStats{}, true},
		{"empty", "", TestpmdStats{}, true},
	})
}

const forwardStatsRX = `
  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 62848          RX-dropped: 0             RX-total: 62848
  TX-packets: 0              TX-dropped: 0             TX-total: 0
  ----------------------------------------------------------------------------
`

func TestParseDumpPorts(t *testing.T) {
	testParse(t, ParseDumpPorts, []parseCase[PortStats]{
		{"counters", dumpPortsOut, PortStats{RXPackets: 2886560, TXPackets: 62848, TXDropped: 2823712}, false},
		{"unavailable", "OFPST_PORT reply (xid=0x4): 1 ports\n  port  1: rx pkts=?, bytes=?, drop=?, errs=?, frame=?, over=?, crc=?\n           tx pkts=?, bytes=?, drop=?, errs=?, coll=?\n", PortStats{}, true},
		{"no port", "OFPST_PORT reply (xid=0x4): 0 ports\n", PortStats{}, true},
	})
}

func TestNICRXAndLinkUp(t *testing.T) {
	out := "  ######################## NIC statistics for port 0  ########################\n  RX-packets: 372736     RX-missed: 0          RX-bytes:  23855104\n"
	m := nicRX.FindStringSubmatch(out)
	require.NotNil(t, m)
	assert.Equal(t, "372736", m[1])
	assert.True(t, linkUp.MatchString("Link status: up\nLink speed: Unknown"))
	assert.False(t, linkUp.MatchString("Link status: down"))
}

func FuzzParseForwardStats(f *testing.F) {
	f.Add(forwardStats)
	f.Add(forwardStatsRX)
	f.Add("Forward statistics for port 0 --- RX-packets: 99999999999999999999999")
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = ParseForwardStats(out) // must not panic
	})
}

func FuzzParseDumpPorts(f *testing.F) {
	f.Add(dumpPortsOut)
	f.Add("rx pkts=?, bytes=?, drop=?\n tx pkts=1, bytes=1, drop=1")
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = ParseDumpPorts(out)
	})
}
