package version

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestVersion: VERSION holds a plain semantic version, usable as an image
// tag and as a NATS micro service version.
func TestVersion(t *testing.T) {
	assert.Regexp(t, regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`), Version)
}
