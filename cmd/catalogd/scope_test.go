package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/publish"
)

// TestPublishCommandAPIClaims: the CLI refuses locally, with --catalog, a
// bundle that claims another package's API; without --catalog the server
// refuses it for a token limited to the bundle's package.
func TestPublishCommandAPIClaims(t *testing.T) {
	sample := filepath.Join("..", "..", "bundles")
	dir := writeTestBundle(t, t.TempDir(), "lighthouse-operator", "1.5.0", "fast", "lighthouse-operator.v1.4.0", nil, nil)
	writeFile(t, filepath.Join(dir, "metadata", "properties.yaml"),
		"properties:\n- type: olm.gvk\n  value: {group: signals.ferry.dev, version: v1, kind: SignalStore}\n")
	claim := `bundle lighthouse-operator.v1.5.0 of package "lighthouse-operator" claims API signals.ferry.dev/v1, Kind=SignalStore, which package "signal-store" provides (bundle signal-store.v2.0.0); the token does not cover package "signal-store"`
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"default scope is the bundle's package", []string{"--catalog", sample}, publish.ExitAuth, "error: " + filepath.ToSlash(dir) + ": " + claim},
		{"a scope without the provider", []string{"--catalog", sample, "--packages", "lighthouse-operator,beacon-metrics"}, publish.ExitAuth, "nothing was uploaded"},
		{"a scope with the provider", []string{"--catalog", sample, "--packages", "lighthouse-operator,signal-store"}, 0, ""},
		{"every package", []string{"--catalog", sample, "--packages", "*"}, 0, ""},
		{"no catalog, no local check", nil, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"publish", "--dry-run"}, tc.args...), dir)
			code, out, errOut := runCLI(args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tc.wantCode, out, errOut, tc.wantErr)
			}
			if (code == 0) != strings.HasPrefix(out, "valid package=lighthouse-operator") {
				t.Fatalf("stdout %q", out)
			}
		})
	}

	// The server applies the same check to a scoped token.
	tokens := writeTokens(t, testToken+" lighthouse-operator\n")
	addr := startServe(t, serveFlags{publish: publishServeFlags{dataDir: t.TempDir(), tokenFile: tokens}})
	code, out, errOut := runCLI("publish", "--server", addr, "--plaintext", "--token-file", writeTokens(t, testToken+"\n"), dir)
	if code != publish.ExitAuth || out != "" || !strings.Contains(errOut, "PermissionDenied") || !strings.Contains(errOut, claim) {
		t.Fatalf("server: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
