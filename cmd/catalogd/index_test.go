package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/testregistry"
)

// TestCatalogImageStartsFromItsIndex: the first start from a catalog image
// parses it and writes its index; the next start with the same image
// reads the index and serves the same catalog; a damaged index is ignored,
// logged and rewritten.
func TestCatalogImageStartsFromItsIndex(t *testing.T) {
	bin := buildCatalogd(t)
	addr := testregistry.Start(t)
	older, _ := sampleCatalogImages(t)
	ref := addr + "/ferry/catalog:stable"
	pushImage(t, ref, older)
	cache, index := t.TempDir(), t.TempDir()
	args := []string{"--catalog", "oci://" + ref, "--image-cache-dir", cache, "--index-cache-dir", index, "--poll-interval", "0"}

	start := func(wantLog string) string {
		t.Helper()
		s := startCatalogd(t, bin, args...)
		digest := s.info(t).GetDigest()
		if !strings.Contains(s.log.String(), wantLog) {
			t.Fatalf("catalogd log does not say %q:\n%s", wantLog, s.log.String())
		}
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		return digest
	}
	parsed := start("catalog index written")
	files, err := filepath.Glob(filepath.Join(index, "*.idx"))
	if err != nil || len(files) != 1 {
		t.Fatalf("index files %v (%v), want one", files, err)
	}
	if got := start("catalog read from its index"); got != parsed {
		t.Fatalf("digest from the index %s, parsed %s", got, parsed)
	}
	if err := os.WriteFile(files[0], []byte("FERRYIDX garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := start("ignoring catalog index"); got != parsed {
		t.Fatalf("digest after a damaged index %s, parsed %s", got, parsed)
	}
	if got := start("catalog read from its index"); got != parsed {
		t.Fatalf("digest from the rewritten index %s, parsed %s", got, parsed)
	}
}
