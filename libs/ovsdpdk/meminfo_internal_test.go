package ovsdpdk

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseFreeHugeMB(t *testing.T) {
	tests := []struct {
		name, meminfo string
		mb            int
		ok            bool
	}{
		{name: "free", meminfo: "HugePages_Total:     300\nHugePages_Free:      300\nHugePages_Rsvd:        0\nHugepagesize:       2048 kB\n", mb: 600, ok: true},
		{name: "reserved pages are not free", meminfo: "HugePages_Free:      256\nHugePages_Rsvd:      128\nHugepagesize:       2048 kB\n", mb: 256, ok: true},
		{name: "1 GiB pages", meminfo: "HugePages_Free:        2\nHugepagesize:    1048576 kB\n", mb: 2048, ok: true},
		{name: "no hugepage lines", meminfo: "MemTotal:       16384 kB\n", mb: 0, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb, ok := parseFreeHugeMB(tt.meminfo)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.mb, mb)
		})
	}
}
