package adapter_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/api"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return rec.Code, string(b)
}

func TestHealthAndMetrics(t *testing.T) {
	h := newHarness(t)
	srv := h.a.HealthHandler()
	code, _ := get(t, srv, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get(t, srv, "/readyz")
	assert.Equal(t, http.StatusOK, code)

	_, err := h.a.Attach(ctx(t), memifBridge(4))
	require.NoError(t, err)
	h.a.OnRequest(service.RequestInfo{Op: contracts.OpAttach, Key: &key})
	h.a.OnRequest(service.RequestInfo{Op: contracts.OpAttach, Key: &key, Err: contracts.Errorf(contracts.CodeVswitch, "x")})
	_, body := get(t, srv, "/metrics")
	for _, want := range []string{
		`usrsp_vpp_adapter_request_duration_seconds_count{op="attach"} 2`,
		`usrsp_vpp_adapter_request_errors_total{code="100",op="attach"} 1`,
		`usrsp_vpp_adapter_interfaces_owned 1`,
		`usrsp_vpp_adapter_replay_duration_seconds_count 1`,
		`usrsp_vpp_adapter_vpp_connected 1`,
	} {
		assert.Contains(t, body, want)
	}

	h.a.Down(api.VPPApiError(-1))
	code, body = get(t, srv, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "not ready")
}
