package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/go-logr/logr"

	"github.com/ferrydev/ferry/internal/catalogd"
)

// TestPprof: the runtime's profiles are served on the metrics listener only
// with --pprof, and --pprof without a metrics listener is refused.
func TestPprof(t *testing.T) {
	t.Run("refused without a metrics listener", func(t *testing.T) {
		err := serve(context.Background(), logr.Discard(), serveFlags{limits: catalogd.DefaultLimits(), pprof: true})
		if err == nil || !strings.Contains(err.Error(), "--pprof") {
			t.Fatalf("serve: %v, want an error naming --pprof", err)
		}
	})
	for _, tc := range []struct {
		name  string
		pprof bool
		want  int
	}{
		{name: "off by default", pprof: false, want: http.StatusNotFound},
		{name: "on with --pprof", pprof: true, want: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metrics := freeAddr(t)
			startServe(t, serveFlags{limits: catalogd.DefaultLimits(), metricsListen: metrics, pprof: tc.pprof})
			// The metrics listener opens right after the gRPC one.
			var resp *http.Response
			err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
				r, err := http.Get("http://" + metrics + "/debug/pprof/heap") //nolint:bodyclose // closed once the poll ends
				resp = r
				return err == nil, nil
			})
			if err != nil {
				t.Fatalf("metrics listener at %s never answered: %v", metrics, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET /debug/pprof/heap: %s, want %d", resp.Status, tc.want)
			}
		})
	}
}
