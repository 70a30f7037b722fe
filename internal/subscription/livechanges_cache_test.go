package subscription

import (
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestPendingDiffs(t *testing.T) {
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	var p pendingDiffs
	p.put(a, "installed|target|false", []string{"Deployment ns/op: spec.replicas: 1 -> 2"})
	cases := []struct {
		name string
		sub  types.NamespacedName
		key  string
		want []string
		hit  bool
	}{
		{name: "same pending upgrade", sub: a, key: "installed|target|false", want: []string{"Deployment ns/op: spec.replicas: 1 -> 2"}, hit: true},
		{name: "another target", sub: a, key: "installed|other|false", hit: false},
		{name: "another installed revision", sub: a, key: "other|target|false", hit: false},
		{name: "the refusal changed", sub: a, key: "installed|target|true", hit: false},
		{name: "another Subscription", sub: b, key: "installed|target|false", hit: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, hit := p.get(tc.sub, tc.key)
			if hit != tc.hit || !slices.Equal(got, tc.want) {
				t.Errorf("get = %q, %t; want %q, %t", got, hit, tc.want, tc.hit)
			}
		})
	}
}

func TestPendingDiffsBounded(t *testing.T) {
	var p pendingDiffs
	for i := range maxPendingDiffs + 10 {
		p.put(types.NamespacedName{Namespace: "ns", Name: fmt.Sprint(i)}, "k", nil)
	}
	if n := len(p.m); n > maxPendingDiffs {
		t.Errorf("%d diffs kept, more than %d", n, maxPendingDiffs)
	}
	if _, hit := p.get(types.NamespacedName{Namespace: "ns", Name: fmt.Sprint(maxPendingDiffs + 9)}, "k"); !hit {
		t.Error("the newest diff was dropped")
	}
}
