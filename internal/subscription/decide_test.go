package subscription

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"
	"github.com/ferrydev/ferry/internal/revision"
)

var decideNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const decideTimeout = 5 * time.Minute

func decideRev(n int64, version, digest string, outcome v1alpha1.RevisionOutcome, reason string, age time.Duration) v1alpha1.Revision {
	started := metav1.NewTime(decideNow.Add(-age))
	return v1alpha1.Revision{
		Spec: v1alpha1.RevisionSpec{
			Revision: n, Package: "pkg", Version: version, Bundle: "pkg.v" + version, Catalog: "cat",
			ContentDigest: digest, Reason: reason,
		},
		Status: v1alpha1.RevisionStatus{Outcome: outcome, StartedAt: &started},
	}
}

// decideFacts is a Subscription with installed (a version or "") whose
// revisions are revs, the last one current, resolved to target.
func decideFacts(installed string, target string, revs ...v1alpha1.Revision) *facts {
	sub := &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", Generation: 1},
		Spec:       v1alpha1.SubscriptionSpec{Package: "pkg"},
	}
	if installed != "" {
		sub.Status.InstalledVersion, sub.Status.InstalledBundle = installed, "pkg.v"+installed
	}
	f := &facts{sub: sub, now: decideNow, revisions: revs, catalog: catalogFacts{usable: true, reachable: true, message: "ok"}}
	if len(revs) > 0 {
		f.current = &f.revisions[len(revs)-1]
		sub.Status.CurrentRevision = f.current.Spec.Revision
		f.health = &install.Health{Healthy: true, Blame: install.BlameNone}
	}
	if target != "" {
		v := semver.MustParse(target)
		f.resolution = &resolver.Decision{Status: resolver.StatusInstall, Target: &resolver.Target{Catalog: "cat", Package: "pkg", Bundle: "pkg.v" + target, Version: v, Channel: "stable"}}
		reason := reasonUpgrade
		switch sub.Status.InstalledBundle {
		case "":
			reason = reasonInstall
		case "pkg.v" + target:
			reason = reasonReconfigure
		}
		f.candidate = &candidate{
			content: content{target: revision.Target{Catalog: "cat", Bundle: "pkg.v" + target, Version: target}, digest: "sha256:" + target, reason: reason},
			edge:    resolver.Edge{Kind: resolver.EdgeReplaces, From: sub.Status.InstalledBundle},
		}
	}
	return f
}

func unhealthy(blame install.HealthBlame) *install.Health {
	return &install.Health{Message: "deployment ns/d: 0/1 replicas available", Blame: blame, BlameMessage: "pod ns/d-1 is on node n1: Ready Unknown"}
}

func TestDecide(t *testing.T) {
	healthy := v1alpha1.OutcomeHealthy
	progressing := v1alpha1.OutcomeProgressing
	tests := []struct {
		name  string
		facts func() *facts
		// want is the action; reason, when set, the decision's reason.
		want   action
		reason string
		check  func(t *testing.T, d decision)
	}{
		{
			name: "deleted Subscription is finalized",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.0.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.sub.DeletionTimestamp = &metav1.Time{Time: decideNow}
				return f
			},
			want: actFinalize,
		},
		{
			name: "an installer that may not act changes nothing and says why",
			facts: func() *facts {
				f := decideFacts("", "1.0.0")
				f.cannotAct = &CannotActError{Reason: v1alpha1.ReasonPermissionsMissing, Err: errors.New("ServiceAccount ns/sa may not create deployments")}
				return f
			},
			want: actCannotAct, reason: v1alpha1.ReasonPermissionsMissing,
			check: func(t *testing.T, d decision) {
				if !strings.HasPrefix(d.message, "cannot act: ServiceAccount ns/sa") {
					t.Errorf("message = %q", d.message)
				}
			},
		},
		{
			name: "an error without a reason gets CannotAct",
			facts: func() *facts {
				f := decideFacts("", "1.0.0")
				f.cannotAct = errors.New("no identity")
				return f
			},
			want: actCannotAct, reason: v1alpha1.ReasonCannotAct,
		},
		{
			name: "paused holds and says an upgrade is available",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.sub.Spec.Paused = true
				f.candidate = nil
				return f
			},
			want: actHold, reason: v1alpha1.ReasonPaused,
			check: func(t *testing.T, d decision) {
				if d.upgrade == nil || !d.upgrade.status || d.upgrade.reason != v1alpha1.ReasonPaused {
					t.Errorf("upgrade = %+v", d.upgrade)
				}
			},
		},
		{
			name: "rollbackTo a revision that does not exist is refused",
			facts: func() *facts {
				f := decideFacts("1.1.0", "", decideRev(2, "1.1.0", "sha256:1.1.0", healthy, reasonUpgrade, time.Hour))
				f.pin = &pinFacts{revision: 7}
				return f
			},
			want: actRefuse, reason: v1alpha1.ReasonRollbackRequested,
		},
		{
			name: "rollbackTo an untrusted revision is refused",
			facts: func() *facts {
				f := decideFacts("1.1.0", "", decideRev(2, "1.1.0", "sha256:1.1.0", healthy, reasonUpgrade, time.Hour))
				r := decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, 2*time.Hour)
				f.pin = &pinFacts{revision: 1, rev: &r, err: &revision.UntrustedError{Namespace: "ns", Name: "s-1", Reason: "forged"}}
				return f
			},
			want: actRefuse, reason: v1alpha1.ReasonRevisionUntrusted,
		},
		{
			name: "rollbackTo another revision records it again",
			facts: func() *facts {
				f := decideFacts("1.1.0", "", decideRev(2, "1.1.0", "sha256:1.1.0", healthy, reasonUpgrade, time.Hour))
				r := decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, 2*time.Hour)
				f.pin = &pinFacts{revision: 1, rev: &r}
				return f
			},
			want: actInstall,
			check: func(t *testing.T, d decision) {
				if d.want.reason != reasonRollback || d.want.rollbackOf != 1 || d.want.target.Version != "1.0.0" {
					t.Errorf("want = %+v", d.want)
				}
			},
		},
		{
			name: "rollbackTo what is applied and healthy is in sync",
			facts: func() *facts {
				f := decideFacts("1.0.0", "", decideRev(3, "1.0.0", "sha256:1.0.0", healthy, reasonRollback, time.Hour))
				r := decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, 2*time.Hour)
				f.pin = &pinFacts{revision: 1, rev: &r}
				return f
			},
			want: actInSync,
		},
		{
			name: "no catalog and nothing installed waits for the catalog",
			facts: func() *facts {
				f := decideFacts("", "")
				f.catalog = catalogFacts{message: `CatalogSource "c" has not delivered a catalog yet`}
				return f
			},
			want: actWaitCatalog, reason: v1alpha1.ReasonCatalogUnavailable,
		},
		{
			name: "unsatisfiable and nothing installed fails",
			facts: func() *facts {
				f := decideFacts("", "")
				f.resolution = &resolver.Decision{Status: resolver.StatusUnsatisfiable, Explanation: &resolver.Explanation{Message: "no version within the range"}}
				return f
			},
			want: actFail, reason: v1alpha1.ReasonUnsatisfiable,
			check: func(t *testing.T, d decision) {
				if d.explanation != "no version within the range" {
					t.Errorf("explanation = %q", d.explanation)
				}
			},
		},
		{
			name: "no catalog keeps what is installed running",
			facts: func() *facts {
				f := decideFacts("1.0.0", "", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.catalog = catalogFacts{message: "unreachable"}
				return f
			},
			want: actInSync,
		},
		{
			name: "a missing dependency is waited for",
			facts: func() *facts {
				f := decideFacts("", "1.0.0")
				f.dependencies = []dependencyFact{{dep: resolver.Dependency{Package: "dep", RequiredBy: "pkg requires dep"}, create: &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: "dep"}}}}
				return f
			},
			want: actWaitDependencies, reason: v1alpha1.ReasonDependencyNotReady,
			check: func(t *testing.T, d decision) {
				if !strings.Contains(d.message, "dep (Subscription dep to be created, pkg requires dep)") {
					t.Errorf("message = %q", d.message)
				}
			},
		},
		{
			name: "a paused Subscription creates no dependency",
			facts: func() *facts {
				f := decideFacts("", "1.0.0")
				f.sub.Spec.Paused = true
				f.dependencies = []dependencyFact{{dep: resolver.Dependency{Package: "dep", RequiredBy: "pkg requires dep"}, create: &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: "dep"}}}}
				return f
			},
			want: actHold, reason: v1alpha1.ReasonPaused,
		},
		{
			name: "a paused Subscription changes no dependency",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.sub.Spec.Paused = true
				child := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: "dep"}}
				f.dependencies = []dependencyFact{{dep: resolver.Dependency{Package: "dep"}, child: child, update: child.DeepCopy()}}
				f.released = []*v1alpha1.Subscription{child}
				return f
			},
			want: actHold, reason: v1alpha1.ReasonPaused,
		},
		{
			name: "an upgrade waiting for approval creates none of its new dependencies",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.sub.Spec.Approval = v1alpha1.ApprovalManual
				f.resolution.NeedsApproval = true
				f.candidate.needsApproval = true
				f.dependencies = []dependencyFact{{dep: resolver.Dependency{Package: "dep", RequiredBy: "pkg 1.1.0 requires dep"}, create: &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: "dep"}}}}
				return f
			},
			want: actHoldForApproval,
			check: func(t *testing.T, d decision) {
				if d.upgrade == nil || !strings.Contains(d.upgrade.message, "approving it also installs or changes dependencies: dep (Subscription dep to be created, pkg 1.1.0 requires dep)") {
					t.Errorf("upgrade = %+v", d.upgrade)
				}
			},
		},
		{
			name: "an upgrade waiting for approval changes no dependency",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.resolution.NeedsApproval = true
				f.candidate.needsApproval = true
				child := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: "dep"}}
				f.dependencies = []dependencyFact{{dep: resolver.Dependency{Package: "dep"}, child: child, update: child.DeepCopy()}}
				f.released = []*v1alpha1.Subscription{{ObjectMeta: metav1.ObjectMeta{Name: "old"}}}
				return f
			},
			want: actHoldForApproval,
		},
		{
			name: "an approved upgrade waits for its dependencies",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.sub.Spec.Approval = v1alpha1.ApprovalManual
				f.sub.Spec.ApprovedVersion = "1.1.0"
				f.dependencies = []dependencyFact{{dep: resolver.Dependency{Package: "dep", RequiredBy: "pkg 1.1.0 requires dep"}, create: &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: "dep"}}}}
				return f
			},
			want: actWaitDependencies, reason: v1alpha1.ReasonDependencyNotReady,
		},
		{
			name:  "a fresh Subscription installs",
			facts: func() *facts { return decideFacts("", "1.0.0") },
			want:  actInstall, reason: v1alpha1.ReasonInstalling,
		},
		{
			name: "a newer version upgrades",
			facts: func() *facts {
				return decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
			},
			want: actInstall, reason: v1alpha1.ReasonUpgrading,
			check: func(t *testing.T, d decision) {
				if d.upgrade == nil || d.upgrade.reason != v1alpha1.ReasonUpgrading || d.want.reason != reasonUpgrade {
					t.Errorf("upgrade = %+v, want = %+v", d.upgrade, d.want)
				}
			},
		},
		{
			name: "a Manual upgrade waits for approval while the installed version is kept",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.candidate.needsApproval = true
				f.candidate.changes = []string{"Deployment d: image a → b"}
				return f
			},
			want: actHoldForApproval,
			check: func(t *testing.T, d decision) {
				if d.pending == nil || d.pending.Version != "1.1.0" || d.want.digest != "sha256:1.0.0" {
					t.Errorf("pending = %+v, want = %+v", d.pending, d.want)
				}
				if !strings.Contains(d.upgrade.message, `set spec.approvedVersion to "1.1.0"`) {
					t.Errorf("upgrade = %+v", d.upgrade)
				}
			},
		},
		{
			name: "an invalid bundle fails and applies nothing",
			facts: func() *facts {
				f := decideFacts("", "1.0.0")
				f.candidate.renderErr = &install.InvalidBundleError{Bundle: "pkg.v1.0.0", Reason: "kind Gizmo"}
				return f
			},
			want: actFail, reason: v1alpha1.ReasonInvalidBundle,
		},
		{
			name: "manifests the catalog cannot give now: the installed bundle is kept from its revision",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.0.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.candidate.renderErr = errors.New("unavailable")
				return f
			},
			want: actInSync,
			check: func(t *testing.T, d decision) {
				if d.want.from == nil || d.want.from.Spec.Revision != 1 {
					t.Errorf("want = %+v", d.want)
				}
			},
		},
		{
			name: "manifests of a new version the catalog cannot give now are waited for",
			facts: func() *facts {
				f := decideFacts("", "1.0.0")
				f.candidate.renderErr = errors.New("unavailable")
				return f
			},
			want: actWaitCatalog, reason: v1alpha1.ReasonCatalogUnavailable,
		},
		{
			name: "a version that failed its gate is not tried again",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, 3*time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", v1alpha1.OutcomeRolledBack, reasonUpgrade, 2*time.Hour),
					decideRev(3, "1.0.0", "sha256:1.0.0", healthy, reasonRollback, time.Hour))
				f.candidate.failed = &f.revisions[1]
				return f
			},
			want: actInSync,
			check: func(t *testing.T, d decision) {
				if d.upgrade == nil || d.upgrade.reason != v1alpha1.ReasonUpgradeFailed || !strings.Contains(d.upgrade.message, AnnotationRetryUpgrade+"=1.1.0") {
					t.Errorf("upgrade = %+v", d.upgrade)
				}
			},
		},
		{
			name: "the retry annotation tries a failed version once more",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, 3*time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", v1alpha1.OutcomeRolledBack, reasonUpgrade, 2*time.Hour),
					decideRev(3, "1.0.0", "sha256:1.0.0", healthy, reasonRollback, time.Hour))
				f.candidate.failed, f.candidate.retry = &f.revisions[1], true
				return f
			},
			want: actInstall,
			check: func(t *testing.T, d decision) {
				if !d.consumeRetry {
					t.Error("the retry annotation is not consumed")
				}
			},
		},
		{
			name: "a blocked CRD change keeps the installed version",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
				f.candidate.crd = &CRDCheck{Findings: []string{"CRD x: field y removed"}, Blocked: true}
				return f
			},
			want: actInSync,
			check: func(t *testing.T, d decision) {
				if d.upgrade == nil || d.upgrade.reason != v1alpha1.ReasonCRDUnsafe || !d.upgrade.status || !strings.Contains(d.explanation, "CRD x: field y removed") {
					t.Errorf("upgrade = %+v, explanation %q", d.upgrade, d.explanation)
				}
			},
		},
		{
			name: "a blocked CRD change with nothing installed fails",
			facts: func() *facts {
				f := decideFacts("", "1.0.0")
				f.candidate.crd = &CRDCheck{Findings: []string{"CRD x: field y removed"}, Blocked: true}
				return f
			},
			want: actFail, reason: v1alpha1.ReasonCRDUnsafe,
		},
		{
			name: "an unhealthy revision within its timeout is waited for",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", progressing, reasonUpgrade, time.Minute))
				f.health = unhealthy(install.BlameRevision)
				return f
			},
			want: actWaitHealthy, reason: v1alpha1.ReasonWaitingForHealthy,
		},
		{
			name: "past its timeout, a revision to blame is rolled back",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", progressing, reasonUpgrade, 10*time.Minute))
				f.health = unhealthy(install.BlameRevision)
				return f
			},
			want: actRollback, reason: v1alpha1.ReasonHealthGateFailed,
			check: func(t *testing.T, d decision) {
				if d.prev == nil || d.prev.Spec.Revision != 1 {
					t.Errorf("prev = %+v", d.prev)
				}
			},
		},
		{
			name: "past its timeout, a health not judged counts as the revision's fault",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", progressing, reasonUpgrade, 10*time.Minute))
				f.health = unhealthy("")
				return f
			},
			want: actRollback,
		},
		{
			name: "past its timeout, an upgrade that cannot be applied is rolled back, healthy or not",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", progressing, reasonUpgrade, 10*time.Minute))
				f.applyFailed = errors.New(`ConfigMap "ns/op" is invalid`)
				return f
			},
			want: actRollback, reason: v1alpha1.ReasonHealthGateFailed,
			check: func(t *testing.T, d decision) {
				if d.prev == nil || d.prev.Spec.Revision != 1 || d.message != `apply failed: ConfigMap "ns/op" is invalid` {
					t.Errorf("prev = %+v, message %q", d.prev, d.message)
				}
			},
		},
		{
			name: "past its timeout, an install that cannot be applied fails its gate",
			facts: func() *facts {
				f := decideFacts("", "1.0.0", decideRev(1, "1.0.0", "sha256:1.0.0", progressing, reasonInstall, 10*time.Minute))
				f.applyFailed = errors.New("refused")
				return f
			},
			want: actGateFailed, reason: v1alpha1.ReasonHealthGateFailed,
		},
		{
			name: "within its timeout, an apply failure is no judgement",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", progressing, reasonUpgrade, time.Minute))
				f.applyFailed = errors.New("refused")
				return f
			},
			want: actInSync,
		},
		{
			name: "past its timeout, a cluster to blame is waited for",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", progressing, reasonUpgrade, 10*time.Minute))
				f.health = unhealthy(install.BlameCluster)
				return f
			},
			want: actWaitCluster, reason: v1alpha1.ReasonWaitingForCluster,
			check: func(t *testing.T, d decision) {
				if !strings.Contains(d.message, "node n1: Ready Unknown") || !strings.Contains(d.message, "0/1 replicas available") {
					t.Errorf("message = %q", d.message)
				}
			},
		},
		{
			name: "past its timeout, a first install has nothing to return to",
			facts: func() *facts {
				f := decideFacts("", "1.0.0", decideRev(1, "1.0.0", "sha256:1.0.0", progressing, reasonInstall, 10*time.Minute))
				f.health = unhealthy(install.BlameRevision)
				return f
			},
			want: actGateFailed, reason: v1alpha1.ReasonHealthGateFailed,
		},
		{
			name: "past its timeout, rollbackPolicy Never marks it failed",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", progressing, reasonUpgrade, 10*time.Minute))
				f.sub.Spec.RollbackPolicy = v1alpha1.RollbackNever
				f.health = unhealthy(install.BlameRevision)
				return f
			},
			want: actGateFailed,
		},
		{
			name: "an interrupted rollback restores the last healthy revision",
			facts: func() *facts {
				f := decideFacts("1.0.0", "",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", v1alpha1.OutcomeRolledBack, reasonUpgrade, 10*time.Minute))
				f.catalog = catalogFacts{message: "unreachable"}
				f.health = unhealthy(install.BlameRevision)
				return f
			},
			want: actInstall,
			check: func(t *testing.T, d decision) {
				if d.want.reason != reasonRollback || d.want.rollbackOf != 1 {
					t.Errorf("want = %+v", d.want)
				}
			},
		},
		{
			name: "an upgrade failed under rollbackPolicy Never stays in place",
			facts: func() *facts {
				f := decideFacts("1.0.0", "1.1.0",
					decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour),
					decideRev(2, "1.1.0", "sha256:1.1.0", v1alpha1.OutcomeFailed, reasonUpgrade, 10*time.Minute))
				f.sub.Spec.RollbackPolicy = v1alpha1.RollbackNever
				f.candidate.failed = &f.revisions[1]
				f.health = unhealthy(install.BlameRevision)
				return f
			},
			want: actWaitHealthy, reason: v1alpha1.ReasonHealthGateFailed,
			check: func(t *testing.T, d decision) {
				if d.want.digest != "sha256:1.1.0" {
					t.Errorf("want = %+v, the failed revision kept", d.want)
				}
			},
		},
		{
			name: "a failed install with nothing to return to stays failed",
			facts: func() *facts {
				f := decideFacts("", "1.0.0", decideRev(1, "1.0.0", "sha256:1.0.0", v1alpha1.OutcomeFailed, reasonInstall, 10*time.Minute))
				f.candidate.failed = &f.revisions[0]
				f.health = unhealthy(install.BlameRevision)
				return f
			},
			want: actWaitHealthy, reason: v1alpha1.ReasonHealthGateFailed,
		},
		{
			name: "a healthy current revision is in sync",
			facts: func() *facts {
				return decideFacts("1.0.0", "1.0.0", decideRev(1, "1.0.0", "sha256:1.0.0", healthy, reasonInstall, time.Hour))
			},
			want: actInSync,
			check: func(t *testing.T, d decision) {
				if d.upgrade == nil || d.upgrade.reason != v1alpha1.ReasonNoUpgrade {
					t.Errorf("upgrade = %+v", d.upgrade)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(tt.facts(), decideTimeout)
			if d.action != tt.want {
				t.Fatalf("action = %s (%s: %s), want %s", d.action, d.reason, d.message, tt.want)
			}
			if tt.reason != "" && d.reason != tt.reason {
				t.Errorf("reason = %s, want %s", d.reason, tt.reason)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
			// Whatever the action then does, even fail to be retried, the
			// conditions summarised from the decision are valid: the API
			// server refuses a condition without a reason.
			for _, res := range []result{{}, {err: errors.New("the action failed")}} {
				f := tt.facts()
				summarize(f, d, res)
				for _, c := range f.sub.Status.Conditions {
					if c.Reason == "" {
						t.Errorf("after %s with result %+v: condition %s has no reason (message %q)", d.action, res, c.Type, c.Message)
					}
				}
			}
		})
	}
}
