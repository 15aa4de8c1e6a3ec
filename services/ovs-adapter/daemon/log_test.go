package daemon

import (
	"bytes"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
)

// TestLogRequestLevels: changes at info, successful reads at debug (they
// are most of the traffic), every error at warn.
func TestLogRequestLevels(t *testing.T) {
	failed := contracts.Errorf(contracts.CodeNotFound, "attachment not found")
	tests := []struct {
		op    contracts.Op
		err   error
		level string // "" when nothing is logged at info
	}{
		{op: contracts.OpAttach, level: "info"},
		{op: contracts.OpDetach, level: "info"},
		{op: contracts.OpGC, level: "info"},
		{op: contracts.OpCheck, level: ""},
		{op: contracts.OpList, level: ""},
		{op: contracts.OpStatus, level: ""},
		{op: contracts.OpCheck, err: failed, level: "warn"},
		{op: contracts.OpAttach, err: failed, level: "warn"},
	}
	for _, tt := range tests {
		t.Run(string(tt.op)+"/"+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			d := &Daemon{cfg: Config{Log: zerolog.New(&buf).Level(zerolog.InfoLevel)}}
			d.logRequest(service.RequestInfo{Op: tt.op, Subject: "usrsp.v1.n.ovs-dpdk." + string(tt.op), Err: tt.err})
			if tt.level == "" {
				assert.Empty(t, buf.String())
				return
			}
			assert.Contains(t, buf.String(), `"level":"`+tt.level+`"`)
		})
	}
}
