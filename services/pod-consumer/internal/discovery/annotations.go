package discovery

import (
	"strconv"
	"strings"

	"usrsp.dev/contracts"
)

// ParseAnnotations parses the downward API annotations file: one
// key="value" per line, the value a Go-quoted string (kubelet writes it
// with %q, so a JSON annotation arrives with escaped quotes and "\n").
// Empty lines are skipped; anything else is an error naming the line.
func ParseAnnotations(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, quoted, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return nil, contracts.Errorf(contracts.CodeDecode, "annotations line %d: want key=\"value\"", n+1)
		}
		v, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, contracts.Errorf(contracts.CodeDecode, "annotations line %d (%s): value is not a quoted string: %v", n+1, key, err)
		}
		out[key] = v
	}
	return out, nil
}
