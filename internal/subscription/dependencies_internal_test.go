package subscription

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"
)

func depChild(parent, versionRange, requiredBy, installed string) *v1alpha1.Subscription {
	s := &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dep", Labels: map[string]string{}, Annotations: map[string]string{AnnotationRequiredBy: requiredBy}},
		Spec:       v1alpha1.SubscriptionSpec{Package: "dep", Channel: "stable", VersionRange: versionRange},
	}
	if parent != "" {
		s.Labels[LabelParent] = parent
	}
	if installed != "" {
		s.Status.InstalledVersion = installed
		s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.TypeInstalled, Status: metav1.ConditionTrue}}
	}
	return s
}

func TestChildUpdate(t *testing.T) {
	parent := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}}
	want := depChild("s", ">=1.1.0 <2.0.0", "pkg 1.1.0 requires dep >=1.1.0 <2.0.0", "")
	want.Spec.Channel = "fast"
	tests := []struct {
		name      string
		child     *v1alpha1.Subscription
		inChannel bool
		// wantRange and wantChannel of the update; "" for no update.
		wantRange, wantChannel string
	}{
		{name: "as required", child: depChild("s", ">=1.1.0 <2.0.0", "pkg 1.1.0 requires dep >=1.1.0 <2.0.0", "1.1.0"), inChannel: true},
		{name: "a higher minimum", child: depChild("s", ">=1.0.0 <2.0.0", "pkg 1.0.0 requires dep >=1.0.0 <2.0.0", "1.0.0"), inChannel: true, wantRange: ">=1.1.0 <2.0.0", wantChannel: "stable"},
		{name: "another channel", child: depChild("s", ">=1.1.0 <2.0.0", "pkg 1.1.0 requires dep >=1.1.0 <2.0.0", "1.0.0"), wantRange: ">=1.1.0 <2.0.0", wantChannel: "fast"},
		{name: "only required-by", child: depChild("s", ">=1.1.0 <2.0.0", "pkg 1.0.0 requires dep >=1.1.0 <2.0.0", "1.1.0"), inChannel: true, wantRange: ">=1.1.0 <2.0.0", wantChannel: "stable"},
		{name: "another parent's child is left alone", child: depChild("other", ">=1.0.0 <2.0.0", "x", "1.0.0")},
		{name: "the user's Subscription is left alone", child: depChild("", ">=1.0.0 <2.0.0", "x", "1.0.0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := childUpdate(parent, tt.child, want, tt.inChannel)
			if tt.wantRange == "" {
				if got != nil {
					t.Fatalf("update = %+v, want none", got.Spec)
				}
				return
			}
			if got == nil {
				t.Fatal("no update")
			}
			if got.Spec.VersionRange != tt.wantRange || got.Spec.Channel != tt.wantChannel || got.Annotations[AnnotationRequiredBy] != want.Annotations[AnnotationRequiredBy] || got.Labels[LabelParent] != "s" {
				t.Errorf("update = %+v %v", got.Spec, got.Annotations)
			}
			if tt.child.Spec.VersionRange == got.Spec.VersionRange && tt.child.Annotations[AnnotationRequiredBy] == got.Annotations[AnnotationRequiredBy] && tt.child.Spec.Channel == got.Spec.Channel {
				t.Error("the child read was changed")
			}
		})
	}
}

func TestReleasedChildren(t *testing.T) {
	parent := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}}
	a := *depChild("s", "", "", "1.0.0")
	b := *depChild("s", "", "", "1.0.0")
	b.Name, b.Spec.Package = "gone", "gone"
	c := *depChild("other", "", "", "1.0.0")
	c.Name, c.Spec.Package = "theirs", "theirs"
	k := *depChild("s", "", "", "1.0.0")
	k.Name, k.Spec.Package = "kept", "kept"
	got := releasedChildren(parent, []v1alpha1.Subscription{a, b, c, k}, []string{"dep"}, func(s *v1alpha1.Subscription) bool { return s.Name == "kept" })
	if len(got) != 1 || got[0].Name != "gone" {
		t.Fatalf("released = %v", got)
	}
	r := release(parent, got[0])
	if _, ok := r.Labels[LabelParent]; ok || r.Annotations[AnnotationNoLongerRequiredBy] != "s" {
		t.Errorf("release = labels %v annotations %v", r.Labels, r.Annotations)
	}
	if got[0].Labels[LabelParent] != "s" {
		t.Error("the child read was changed")
	}
}

func TestRequirementUnmet(t *testing.T) {
	tests := []struct {
		name, installed, versionRange, want string
	}{
		{name: "within", installed: "1.1.0", versionRange: ">=1.1.0 <2.0.0"},
		{name: "no range", installed: "1.0.0"},
		{name: "below", installed: "1.0.0", versionRange: ">=1.1.0 <2.0.0", want: "1.0.0 installed, >=1.1.0 <2.0.0 required"},
		{name: "not a version", installed: "x", versionRange: ">=1.1.0", want: `installed version "x", >=1.1.0 required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := requirementUnmet(depChild("s", "", "", tt.installed), tt.versionRange); got != tt.want {
				t.Errorf("requirementUnmet = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecideDependencies(t *testing.T) {
	healthy := v1alpha1.OutcomeHealthy
	inSync := func() *facts {
		return decideFacts("1.1.0", "1.1.0", decideRev(1, "1.1.0", "sha256:1.1.0", healthy, reasonInstall, time.Hour))
	}
	dep := resolver.Dependency{Package: "dep", RequiredBy: "pkg 1.1.0 requires dep >=1.1.0 <2.0.0"}
	tests := []struct {
		name  string
		facts func() *facts
		want  action
		// message is part of the decision's message.
		message string
	}{
		{
			name: "a child to update is waited for",
			facts: func() *facts {
				f := inSync()
				child := depChild("s", ">=1.0.0 <2.0.0", "", "1.0.0")
				upd := child.DeepCopy()
				upd.Spec.VersionRange = ">=1.1.0 <2.0.0"
				f.dependencies = []dependencyFact{{dep: dep, child: child, update: upd, versionRange: ">=1.1.0 <2.0.0"}}
				return f
			},
			want: actWaitDependencies, message: `dep (Subscription dep to be updated to versionRange ">=1.1.0 <2.0.0", pkg 1.1.0 requires dep >=1.1.0 <2.0.0)`,
		},
		{
			name: "a child below the required range is waited for",
			facts: func() *facts {
				f := inSync()
				f.dependencies = []dependencyFact{{dep: dep, child: depChild("s", ">=1.1.0 <2.0.0", "", "1.0.0"), versionRange: ">=1.1.0 <2.0.0"}}
				return f
			},
			want: actWaitDependencies, message: "dep (Subscription dep: 1.0.0 installed, >=1.1.0 <2.0.0 required",
		},
		{
			name: "a child within the range is not waited for",
			facts: func() *facts {
				f := inSync()
				f.dependencies = []dependencyFact{{dep: dep, child: depChild("s", ">=1.1.0 <2.0.0", "", "1.1.0"), versionRange: ">=1.1.0 <2.0.0"}}
				return f
			},
			want: actInSync,
		},
		{
			name: "a child no longer required is released once in sync",
			facts: func() *facts {
				f := inSync()
				f.released = []*v1alpha1.Subscription{depChild("s", "", "", "1.0.0")}
				return f
			},
			want: actReleaseDependencies,
		},
		{
			name: "a child no longer required stays while the upgrade is not healthy",
			facts: func() *facts {
				f := inSync()
				f.health = unhealthy(install.BlameRevision)
				f.released = []*v1alpha1.Subscription{depChild("s", "", "", "1.0.0")}
				return f
			},
			want: actWaitHealthy,
		},
		{
			name: "a child no longer required stays while the new version is installed",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.released = []*v1alpha1.Subscription{depChild("s", "", "", "1.0.0")}
				return f
			},
			want: actInstall,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(tt.facts(), decideTimeout)
			if d.action != tt.want {
				t.Fatalf("action = %s (%s: %s), want %s", d.action, d.reason, d.message, tt.want)
			}
			if !strings.Contains(d.message, tt.message) {
				t.Errorf("message = %q, want it to contain %q", d.message, tt.message)
			}
		})
	}
}
