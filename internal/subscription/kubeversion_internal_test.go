package subscription

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/version"
)

// versionAnswers answers ServerVersion from a list, one answer per call.
type versionAnswers struct {
	answers []versionAnswer
	calls   int
}

type versionAnswer struct {
	git string
	err error
}

func (v *versionAnswers) ServerVersion() (*version.Info, error) {
	a := v.answers[v.calls]
	v.calls++
	if a.err != nil {
		return nil, a.err
	}
	return &version.Info{GitVersion: a.git}, nil
}

func TestDiscoveryKubeVersion(t *testing.T) {
	down := errors.New("connection refused")
	type step struct {
		after time.Duration // since the start
		want  string        // the version, or the error's text
		err   bool
	}
	for _, tc := range []struct {
		name    string
		answers []versionAnswer
		steps   []step
		calls   int
	}{
		{
			name:    "read once, then again only after the refresh period",
			answers: []versionAnswer{{git: "v1.29.4-eks-036c24b"}, {git: "v1.30.1+k3s1"}},
			steps:   []step{{0, "1.29.4", false}, {9 * time.Minute, "1.29.4", false}, {10 * time.Minute, "1.30.1", false}},
			calls:   2,
		},
		{
			name:    "a failed read keeps the version read before and asks again at the next call",
			answers: []versionAnswer{{git: "v1.33.13"}, {err: down}, {git: "v1.34.0"}},
			steps:   []step{{0, "1.33.13", false}, {10 * time.Minute, "1.33.13", false}, {10*time.Minute + time.Second, "1.34.0", false}},
			calls:   3,
		},
		{
			name:    "without a version read, the error",
			answers: []versionAnswer{{err: down}, {git: "v1.33.13"}},
			steps:   []step{{0, "reading the cluster's Kubernetes version: connection refused", true}, {time.Second, "1.33.13", false}},
			calls:   2,
		},
		{
			name:    "a version that is not one",
			answers: []versionAnswer{{git: "master"}},
			steps:   []step{{0, `reading the cluster's Kubernetes version: the cluster's Kubernetes version "master" is not a version`, true}},
			calls:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &versionAnswers{answers: tc.answers}
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var now time.Time
			d := NewDiscoveryKubeVersion(src, 0)
			d.now = func() time.Time { return now }
			for i, s := range tc.steps {
				now = start.Add(s.after)
				v, err := d.KubeVersion(context.Background())
				switch {
				case s.err && (err == nil || !strings.HasPrefix(err.Error(), s.want)):
					t.Errorf("step %d: KubeVersion = %v, %v; want error %q", i, v, err, s.want)
				case !s.err && (err != nil || v.String() != s.want):
					t.Errorf("step %d: KubeVersion = %v, %v; want %s", i, v, err, s.want)
				}
			}
			if src.calls != tc.calls {
				t.Errorf("discovery asked %d times, want %d", src.calls, tc.calls)
			}
		})
	}
}
