package catalogd

import (
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/ociimage"
)

// TestImageProblemsOfTheCatalogReported: an image's problem is reported
// beside a catalog only while that catalog is not yet loaded from the
// image's new digest, so that GetCatalogInfo never shows the new digest
// with the old "still serving" problem.
func TestImageProblemsOfTheCatalogReported(t *testing.T) {
	const ref = "oci://registry.example:5000/ferry/catalog:latest"
	const oldDigest = "sha256:" + "1111111111111111111111111111111111111111111111111111111111111111"
	const newDigest = "sha256:" + "2222222222222222222222222222222222222222222222222222222222222222"
	const other = "oci://registry.example:5000/ferry/other:latest"
	const otherDigest = "sha256:" + "3333333333333333333333333333333333333333333333333333333333333333"
	loadedFrom := func(names ...string) *catalog.Catalog { return &catalog.Catalog{Sources: names} }
	oldCatalog := loadedFrom("dir", ociimage.SourceName(ref, oldDigest), ociimage.SourceName(other, otherDigest))
	newCatalog := loadedFrom("dir", ociimage.SourceName(ref, newDigest), ociimage.SourceName(other, otherDigest))

	tests := []struct {
		name    string
		pending string // digest being tried; "" none
		problem string
		catalog *catalog.Catalog
		want    bool // the image's problem is reported
	}{
		{name: "no problem", catalog: oldCatalog},
		{name: "failed check, old catalog served", problem: "pull failed; still serving " + oldDigest, catalog: oldCatalog, want: true},
		{name: "new digest being loaded, old catalog still served", pending: newDigest, problem: "pull failed; still serving " + oldDigest, catalog: oldCatalog, want: true},
		{name: "new digest swapped in before the check cleared the problem", pending: newDigest, problem: "pull failed; still serving " + oldDigest, catalog: newCatalog},
		{name: "no catalog given: every problem", pending: newDigest, problem: "pull failed; still serving " + oldDigest, want: true},
		{name: "a catalog of another digest", pending: newDigest, problem: "pull failed; still serving " + oldDigest,
			catalog: loadedFrom(ociimage.SourceName(ref, otherDigest)), want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im := &imageCatalog{ref: ref, served: &ociimage.Content{Ref: ref, Digest: oldDigest}, problem: tc.problem}
			if tc.pending != "" {
				im.pending = &ociimage.Content{Ref: ref, Digest: tc.pending}
			}
			// A second image, always stale, is reported whatever the catalog.
			stale := &imageCatalog{ref: other, served: &ociimage.Content{Ref: other, Digest: otherDigest}, problem: "unauthorized; still serving " + otherDigest}
			s := &ImageCatalogs{images: []*imageCatalog{im, stale}}
			got := s.ProblemsOf(tc.catalog)
			var mine, others int
			for _, p := range got {
				switch p.Path {
				case ref:
					mine++
					if p.Reason != tc.problem || p.Field != "image" || p.Severity != catalog.SeverityError {
						t.Errorf("problem %+v, want reason %q, field image, an error", p, tc.problem)
					}
				case other:
					others++
				default:
					t.Errorf("problem of an unknown image: %+v", p)
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.want]; mine != want {
				t.Errorf("%d problems of %s, want %d: %+v", mine, ref, want, got)
			}
			if others != 1 {
				t.Errorf("%d problems of the stale image %s, want 1: %+v", others, other, got)
			}
		})
	}
}
