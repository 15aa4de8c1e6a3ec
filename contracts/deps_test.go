package contracts_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// contracts is the vocabulary every binary shares; it must stay light.
// Its packages may import only the standard library, nats.go and each other.
func TestImportsOnlyStdlibAndNATS(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "usrsp.dev/contracts/...").Output()
	require.NoError(t, err)
	for _, p := range strings.Fields(string(out)) {
		std := !strings.Contains(strings.SplitN(p, "/", 2)[0], ".")
		ok := std || strings.HasPrefix(p, "usrsp.dev/contracts") || strings.HasPrefix(p, "github.com/nats-io/nats.go")
		require.True(t, ok, "contracts imports %s", p)
	}
}
