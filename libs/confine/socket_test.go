package confine

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
)

func TestCheckSocketPathAndGiveSocket(t *testing.T) {
	acc := contracts.PodAccess{GID: 4242, Mode: 0o660}
	tests := []struct {
		name, plant string
		check       contracts.Code // CheckSocketPath's error code, 0 for none
		exists      bool
		give        contracts.Code // GiveSocket's error code, 0 for none
	}{
		{name: "missing", give: contracts.CodeVswitch},
		{name: "socket", plant: "socket", exists: true},
		{name: "symlink", plant: "symlink", check: contracts.CodeInvalidConfig, give: contracts.CodeConflict},
		{name: "hard link", plant: "hard link", exists: true, give: contracts.CodeConflict},
		{name: "through a symlinked directory", plant: "symlinked dir", check: contracts.CodeInvalidConfig, give: contracts.CodeIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rel := "pod/x.sock"
			switch tt.plant {
			case "socket":
				l, err := net.Listen("unix", filepath.Join(f.root, rel))
				require.NoError(t, err)
				defer l.Close()
			case "symlinked dir":
				require.NoError(t, os.Symlink(f.outside, filepath.Join(f.root, "evil")))
				rel = "evil/secret"
			default:
				plant(t, f, tt.plant, "x.sock")
			}
			p := f.path(t, rel)

			st, err := CheckSocketPath("interface.socketPath", "/shown", p)
			assert.Equal(t, tt.check, contracts.CodeOf(err), "%v", err)
			assert.Equal(t, tt.exists, st != nil)
			if err != nil {
				assert.Contains(t, err.Error(), `interface.socketPath "/shown"`)
			}

			err = GiveSocket(p, acc, 20*time.Millisecond, "the vswitch")
			assert.Equal(t, tt.give, contracts.CodeOf(err), "%v", err)
			if tt.give == contracts.CodeVswitch {
				assert.Contains(t, err.Error(), "the vswitch did not create socket")
			}
			if tt.give == 0 {
				var got unix.Stat_t
				require.NoError(t, unix.Lstat(filepath.Join(f.root, rel), &got))
				assert.Equal(t, uint32(acc.GID), got.Gid)
				assert.Equal(t, uint32(0o660), got.Mode&0o7777)
			}
			f.assertUntouched(t)
		})
	}
}
