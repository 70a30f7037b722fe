package testenv

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/testbin"
)

func TestStartWithoutBinariesNamesTheBuildCommand(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	t.Setenv("TEST_ASSET_ETCD", "")
	t.Setenv("TEST_ASSET_KUBE_APISERVER", "")
	_, err := start()
	if !errors.Is(err, testbin.ErrMissing) {
		t.Fatalf("start() error = %v, want %v", err, testbin.ErrMissing)
	}
	if !strings.Contains(err.Error(), testbin.BuildCommand) {
		t.Fatalf("start() error = %q, want it to name %q", err, testbin.BuildCommand)
	}
}
