package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"usrsp.dev/contracts"
)

func TestCheckNetns(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, msg string
	}{
		{"a network namespace", "/proc/self/ns/net", ""},
		{"empty", "", "CNI_NETNS is required"},
		{"missing", filepath.Join(dir, "gone"), "does not exist"},
		{"a regular file", file, "is not a namespace"},
		{"a directory", dir, "is not a namespace"},
		{"another namespace type", "/proc/self/ns/uts", "not a network namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckNetns(tt.path)
			if tt.msg == "" {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, contracts.CodeInvalidEnv, contracts.CodeOf(err))
			assert.ErrorContains(t, err, tt.msg)
			assert.ErrorContains(t, err, "CNI_NETNS")
		})
	}
}
