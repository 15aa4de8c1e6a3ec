// Package version is the one place the pod-consumer module's version is set: the
// VERSION file beside this one, embedded here. --version, the NATS service
// metadata and the image tag (the Makefile reads the same file) all use it;
// bump it there and nowhere else.
package version

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var file string

// Version is the module's semantic version, e.g. "0.2.0": plain
// MAJOR.MINOR.PATCH, since it is also an image tag (no "+" allowed there).
var Version = strings.TrimSpace(file)
