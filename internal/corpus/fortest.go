package corpus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/testbin"
)

// unpackTimeout bounds ForTest's unpacking: the largest catalog of the
// corpus takes seconds on 2 cores.
const unpackTimeout = 10 * time.Minute

// ForTest returns the folder holding the corpus catalog name (a tarball of
// ../shared/corpus next to the module at moduleRoot), unpacked once into the
// cache (testbin.CacheDir). When the corpus is absent it skips tb; a fuzz
// target collecting seeds (a *testing.F) gets "" instead, so that it still
// runs its other seeds. Any other failure fails tb.
func ForTest(tb testing.TB, moduleRoot, name string) string {
	tb.Helper()
	tarball, err := File(moduleRoot, name)
	if errors.Is(err, ErrAbsent) {
		if _, fuzz := tb.(*testing.F); fuzz {
			return ""
		}
		tb.Skipf("skipped: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	cache, err := testbin.CacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), unpackTimeout)
	defer cancel()
	dir, err := Extract(ctx, tarball, cache)
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}
