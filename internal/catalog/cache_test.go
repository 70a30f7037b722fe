package catalog

import (
	"testing"
	"unsafe"
)

func TestManifestsSize(t *testing.T) {
	grown := make([]byte, 10, 4096)
	per := int64(unsafe.Sizeof(Manifest{}))
	for _, tc := range []struct {
		name string
		ms   []Manifest
		want int64
	}{
		{name: "none", want: 0},
		{
			name: "json and names",
			ms:   []Manifest{{APIVersion: "v1", Kind: "ConfigMap", Name: "a", JSON: []byte(`{"k":1}`)}},
			want: per + 2 + 9 + 1 + 7,
		},
		{
			name: "the spare room of a grown buffer counts",
			ms:   []Manifest{{Kind: "K", JSON: grown}},
			want: per + 1 + 4096,
		},
		{
			name: "the slice's own capacity counts",
			ms:   make([]Manifest, 0, 3),
			want: 3 * per,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ManifestsSize(tc.ms); got != tc.want {
				t.Errorf("ManifestsSize = %d, want %d", got, tc.want)
			}
		})
	}
}
