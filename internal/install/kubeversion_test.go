package install_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
)

func TestMinKubeVersion(t *testing.T) {
	csv := func(spec string) catalog.Manifest {
		return catalog.Manifest{APIVersion: "operators.coreos.com/v1alpha1", Kind: catalog.KindClusterServiceVersion, Name: "x.v1.0.0",
			JSON: []byte(`{"apiVersion":"operators.coreos.com/v1alpha1","kind":"ClusterServiceVersion","metadata":{"name":"x.v1.0.0"},"spec":` + spec + `}`)}
	}
	cm := catalog.Manifest{APIVersion: "v1", Kind: "ConfigMap", Name: "c", JSON: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)}
	for _, tc := range []struct {
		name string
		ms   []catalog.Manifest
		want string
		err  string
		// typeErr: the error is *MinKubeVersionTypeError, else *InvalidBundleError.
		typeErr bool
	}{
		{name: "set", ms: []catalog.Manifest{cm, csv(`{"minKubeVersion":"1.30.0"}`)}, want: "1.30.0"},
		{name: "not set", ms: []catalog.Manifest{csv(`{}`)}, want: ""},
		{name: "null", ms: []catalog.Manifest{csv(`{"minKubeVersion":null}`)}, want: ""},
		{name: "written as anything, returned as written", ms: []catalog.Manifest{csv(`{"minKubeVersion":"v1.x"}`)}, want: "v1.x"},
		{name: "not a string", ms: []catalog.Manifest{csv(`{"minKubeVersion":1.3}`)}, err: "ClusterServiceVersion x.v1.0.0: spec.minKubeVersion is 1.3, not a string (quote it in YAML: an unquoted 1.30 is the number 1.3)", typeErr: true},
		{name: "no CSV", ms: []catalog.Manifest{cm}, err: "0 ClusterServiceVersions among the 1 manifests"},
		{name: "two CSVs", ms: []catalog.Manifest{csv(`{}`), csv(`{}`)}, err: "2 ClusterServiceVersions among the 2 manifests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := install.MinKubeVersion(tc.ms)
			if tc.err != "" {
				var ibe *install.InvalidBundleError
				var mte *install.MinKubeVersionTypeError
				if tc.typeErr && !errors.As(err, &mte) || !tc.typeErr && !errors.As(err, &ibe) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("MinKubeVersion = %q, %v (%T); want %q", got, err, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MinKubeVersion = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
