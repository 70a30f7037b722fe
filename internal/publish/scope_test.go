package publish

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
)

func TestCheckClaims(t *testing.T) {
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatal(err)
	}
	signals := catalog.GVK{Group: "signals.ferry.dev", Version: "v1", Kind: "SignalStore"}
	metrics := catalog.GVK{Group: "metrics.ferry.dev", Version: "v1alpha1", Kind: "BeaconMetric"}
	beacons := catalog.GVK{Group: "lighthouse.ferry.dev", Version: "v1", Kind: "Beacon"}
	unknown := catalog.GVK{Group: "example.com", Version: "v1", Kind: "Nobody"}
	info := func(apis ...catalog.GVK) *catalog.BundleInfo {
		return &catalog.BundleInfo{Package: "lighthouse-operator", Name: "lighthouse-operator.v9.0.0", ClaimedAPIs: apis}
	}
	scoped := &Grant{Packages: []string{"lighthouse-operator"}}
	tests := []struct {
		name  string
		info  *catalog.BundleInfo
		grant *Grant
		want  []string // providers named, in order
	}{
		{"own API", info(beacons), scoped, nil},
		{"nobody's API", info(unknown), scoped, nil},
		{"two foreign APIs", info(signals, metrics), scoped, []string{"beacon-metrics", "signal-store"}},
		{"covered", info(signals), &Grant{Packages: []string{"lighthouse-operator", "signal-store"}}, nil},
		{"partly covered", info(signals, metrics), &Grant{Packages: []string{"lighthouse-operator", "signal-store"}}, []string{"beacon-metrics"}},
		{"every package", info(signals, metrics), &Grant{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckClaims(c, tc.info, tc.grant)
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var ce *APIClaimError
					if !errors.As(e, &ce) {
						t.Fatalf("not an APIClaimError: %v", e)
					}
					got = append(got, ce.Provider)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("providers %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
}

func TestParsePackages(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"*", nil},
		{"b,a", []string{"a", "b"}},
		{" a , b ", []string{"a", "b"}},
		{"a,*", nil},
		{"a b", []string{"a", "b"}},
	}
	for _, tc := range tests {
		if got := ParsePackages(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}
