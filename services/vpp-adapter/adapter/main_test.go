package adapter_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"usrsp.dev/libs/confine"
)

// podBase is the shared dir of the tests' adapters: request socket paths
// are <podBase>/<pod>/<file> (testRoots, see libs/confine).
var (
	podBase   string
	testRoots *confine.Roots
)

func TestMain(m *testing.M) {
	// govpp's mock adapter prints every reply with the standard logger.
	log.SetOutput(io.Discard)
	base, err := os.MkdirTemp("", "vppa-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	podBase = filepath.Join(base, "pods")
	testRoots, err = confine.Layout{SharedDir: podBase, LinkDir: filepath.Join(base, "l"), KubeletPodsDir: filepath.Join(base, "k")}.Roots()
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	_ = os.RemoveAll(base)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
