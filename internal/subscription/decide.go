package subscription

import (
	"errors"
	"fmt"
	"time"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"
	"github.com/ferrydev/ferry/internal/revision"
)

// action is what one reconcile does. decide picks exactly one.
type action string

// Actions, in the order decide considers them (see doc.go).
const (
	// actFinalize removes what the deleted Subscription installed.
	actFinalize action = "Finalize"
	// actCannotAct changes nothing: the installer may not act now.
	actCannotAct action = "CannotAct"
	// actHold changes nothing: spec.paused.
	actHold action = "Hold"
	// actRefuse changes nothing: spec.rollbackTo names a revision that
	// does not exist or is not trusted.
	actRefuse action = "Refuse"
	// actWaitCatalog: no catalog content to resolve with, or the target's
	// manifests cannot be fetched now; nothing is installed to keep.
	actWaitCatalog action = "WaitForCatalog"
	// actWaitDependencies creates the missing dependency Subscriptions and
	// waits until every dependency is installed.
	actWaitDependencies action = "WaitForDependencies"
	// actFail: nothing can be applied (unsatisfiable, invalid bundle, CRD
	// change blocked, a version that failed before); what is installed
	// keeps running.
	actFail action = "MarkFailed"
	// actInstall records a new revision and applies it: an install,
	// upgrade, reconfiguration, downgrade, or a restored revision
	// (rollbackTo, or the last healthy one after an interrupted rollback).
	actInstall action = "Install"
	// actWaitHealthy applies the current revision again and waits for it
	// to become healthy, within its health timeout.
	actWaitHealthy action = "WaitForHealthy"
	// actWaitCluster: past the health timeout, but the cluster is to blame:
	// keep waiting and say so.
	actWaitCluster action = "WaitForCluster"
	// actRollback restores the last healthy revision: the current one
	// missed its health gate.
	actRollback action = "RollBack"
	// actGateFailed marks the current revision failed: it missed its health
	// gate with nothing to return to.
	actGateFailed action = "MarkGateFailed"
	// actInSync applies the current, healthy revision again (drift).
	actInSync action = "InSync"
	// actHoldForApproval is actInSync for a Manual Subscription whose
	// upgrade waits for spec.approvedVersion.
	actHoldForApproval action = "HoldForApproval"
	// actReleaseDependencies is actInSync that first releases the child
	// Subscriptions the installed version no longer needs.
	actReleaseDependencies action = "ReleaseDependencies"
)

// decision is the action of one reconcile with its inputs.
type decision struct {
	action action
	// reason and message explain it (condition reason and message).
	reason, message string
	// want is the content actInstall records and applies, or the current
	// content the keeping actions apply again.
	want *content
	// prev is the revision actRollback restores.
	prev *v1alpha1.Revision
	// consumeRetry: want is a version that failed before and the retry
	// annotation grants another try.
	consumeRetry bool
	// upgrade is what the UpgradeAvailable condition says; nil leaves it.
	upgrade *note
	// pending is the upgrade waiting for approval; nil when none.
	pending *v1alpha1.AvailableUpgrade
	// explanation is status.explanation.
	explanation string
	// requeue is when to look again when nothing else will trigger it.
	requeue time.Duration
}

// note is a condition's status, reason and message.
type note struct {
	status  bool
	reason  string
	message string
}

// catalogRequeue is how often a Subscription waiting on something that is
// not watched (a catalog, another Subscription's resolution, custom
// resources) is looked at again.
const catalogRequeue = time.Minute

// decide picks the one action of a reconcile from the facts. It is pure:
// no cluster, no catalog, no clock but f.now.
func decide(f *facts, timeout time.Duration) decision {
	sub := f.sub
	switch {
	case !sub.DeletionTimestamp.IsZero():
		return decision{action: actFinalize, reason: v1alpha1.ReasonDeleting, message: "deleting: removing what the Subscription installed"}
	case f.cannotAct != nil:
		reason := v1alpha1.ReasonCannotAct
		var ca *CannotActError
		if errors.As(f.cannotAct, &ca) && ca.Reason != "" {
			reason = ca.Reason
		}
		return decision{action: actCannotAct, reason: reason, message: "cannot act: " + f.cannotAct.Error(), explanation: f.cannotAct.Error(), requeue: catalogRequeue}
	case sub.Spec.Paused:
		d := decision{action: actHold, reason: v1alpha1.ReasonPaused, message: "paused: nothing is changed until spec.paused is false"}
		if t := resolvedUpgrade(f); t != nil {
			d.upgrade = &note{true, v1alpha1.ReasonPaused, fmt.Sprintf("%s %s is available; the Subscription is paused", t.Package, t.Version)}
		} else if f.resolution != nil && f.resolution.Target != nil {
			d.upgrade = noUpgrade()
		}
		return d
	case f.pin != nil:
		return decidePin(f, timeout)
	}
	keep := decision{}
	switch {
	case !f.catalog.usable, f.resolveErr != nil, f.resolution != nil && f.resolution.Status == resolver.StatusUnsatisfiable:
		if f.current == nil {
			if !f.catalog.usable {
				return decision{action: actWaitCatalog, reason: v1alpha1.ReasonCatalogUnavailable, message: f.catalog.message, requeue: catalogRequeue}
			}
			return decision{action: actFail, reason: v1alpha1.ReasonUnsatisfiable, message: "waiting for the catalog or the spec to change", explanation: resolutionProblem(f), requeue: catalogRequeue}
		}
		// What is installed keeps running, and is gated as it is.
		keep.explanation = resolutionProblem(f)
		keep.requeue = catalogRequeue
		return keepCurrent(f, keep, timeout)
	}
	// A Manual upgrade waiting for approval installs nothing, its new
	// dependencies included.
	if waiting := waitingDependencies(f); waiting != "" && !awaitsApproval(f) {
		return decision{action: actWaitDependencies, reason: v1alpha1.ReasonDependencyNotReady, message: "waiting for dependencies to be installed: " + waiting}
	}
	c := f.candidate
	upgrade := sub.Status.InstalledBundle != "" && sub.Status.InstalledBundle != c.target.Bundle
	if !upgrade {
		keep.upgrade = noUpgrade()
	}
	if c.needsApproval {
		// A Manual upgrade waits: the installed version keeps being applied
		// (so drift is corrected) and the status says what would change.
		t := f.resolution.Target
		keep.pending = &v1alpha1.AvailableUpgrade{Version: c.target.Version, Bundle: c.target.Bundle, Edge: string(c.edge.Kind), Changes: c.changes, Refusal: c.refusal}
		msg := fmt.Sprintf("%s %s is available (%s from %s); set spec.approvedVersion to %q to upgrade",
			t.Package, c.target.Version, c.edge.Kind, sub.Status.InstalledBundle, c.target.Version)
		if f.resolution.ApprovedUnreachable != "" {
			msg += "; " + f.resolution.ApprovedUnreachable
		}
		if c.refusal != "" {
			msg += "; the ServiceAccount may not apply it yet (status.availableUpgrade.refusal lists what it lacks)"
		}
		if waiting := waitingDependencies(f); waiting != "" {
			msg += "; approving it also installs or changes dependencies: " + waiting
		}
		keep.upgrade = &note{true, v1alpha1.ReasonUpgradePending, msg}
		return keepCurrent(f, keep, timeout)
	}
	if c.renderErr != nil {
		return decideRenderError(f, keep, timeout)
	}
	if c.failed != nil && !c.retry {
		advice := "until a newer version appears"
		if c.failed.Spec.Reason == reasonReconfigure {
			advice = "until spec.config changes"
		}
		keep.upgrade = &note{false, v1alpha1.ReasonUpgradeFailed, fmt.Sprintf("%s %s failed its health gate in revision %d (%s) and is not tried again %s or the annotation %s=%s is set",
			sub.Spec.Package, c.failed.Spec.Version, c.failed.Spec.Revision, c.failed.Status.Message, advice, AnnotationRetryUpgrade, c.failed.Spec.Version)}
		return keepCurrent(f, keep, timeout)
	}
	if c.crd != nil && c.crd.Blocked {
		msg := fmt.Sprintf("%s %s is blocked by crdUpgradeSafety: Strict: %s", sub.Spec.Package, c.target.Version, joinSemi(c.crd.Findings))
		keep.explanation = msg
		// Custom resources are not watched: check again later.
		keep.requeue = catalogRequeue
		if f.current != nil && f.current.Spec.Bundle != c.target.Bundle {
			keep.upgrade = &note{true, v1alpha1.ReasonCRDUnsafe, msg}
			return keepCurrent(f, keep, timeout)
		}
		keep.action, keep.reason, keep.message = actFail, v1alpha1.ReasonCRDUnsafe, msg
		return keep
	}
	if upgrade {
		keep.upgrade = &note{false, v1alpha1.ReasonUpgrading, fmt.Sprintf("upgrading to %s %s (%s from %s)", sub.Spec.Package, c.target.Version, c.edge.Kind, sub.Status.InstalledBundle)}
	}
	keep.consumeRetry = c.retry
	d := gate(f, keep, &c.content, timeout)
	if d.action == actInSync && len(f.released) > 0 {
		// The version that no longer needs them runs, healthy.
		d.action = actReleaseDependencies
	}
	return d
}

// decidePin restores and keeps the revision spec.rollbackTo names.
func decidePin(f *facts, timeout time.Duration) decision {
	p := f.pin
	sub := f.sub
	switch {
	case p.rev == nil:
		msg := fmt.Sprintf("spec.rollbackTo names revision %d, which does not exist (kubectl get revisions -n %s -l %s=%s)", p.revision, sub.Namespace, LabelSubscription, install.LabelValue(sub.Name))
		return decision{action: actRefuse, reason: v1alpha1.ReasonRollbackRequested, message: msg, explanation: msg}
	case p.err != nil:
		msg := fmt.Sprintf("spec.rollbackTo names revision %d, which is refused: %v; nothing was applied", p.revision, p.err)
		return decision{action: actRefuse, reason: v1alpha1.ReasonRevisionUntrusted, message: msg, explanation: msg}
	}
	rev := p.rev
	want := &content{
		target:  revision.Target{Catalog: rev.Spec.Catalog, Bundle: rev.Spec.Bundle, Version: rev.Spec.Version},
		objects: p.objects, digest: rev.Spec.ContentDigest, reason: reasonRollback, rollbackOf: rev.Spec.Revision,
	}
	return gate(f, decision{}, want, timeout)
}

// decideRenderError: the candidate's objects cannot be had.
func decideRenderError(f *facts, d decision, timeout time.Duration) decision {
	c := f.candidate
	err := c.renderErr
	var invalid *install.InvalidBundleError
	var mode *install.UnsupportedInstallModeError
	var mismatch *catalogsource.ContentMismatchError
	var kube *KubeVersionError
	reason := ""
	switch {
	case errors.As(err, &kube):
		// Learned from the manifests just now: the next resolution passes
		// the bundle over.
		reason = kubeVersionReason
		d.requeue = 5 * time.Second
	case errors.As(err, &invalid):
		reason = v1alpha1.ReasonInvalidBundle
	case errors.As(err, &mismatch):
		// The catalog's answer does not match what it announced: nothing
		// of it is applied, and nothing is retried until the catalog changes.
		reason = v1alpha1.ReasonContentMismatch
	case errors.As(err, &mode):
		reason = v1alpha1.ReasonUnsupportedMode
	case f.current != nil && f.current.Spec.Bundle == c.target.Bundle:
		// The catalog cannot give the installed bundle (unreachable, or it no
		// longer has it): keep applying what is installed, from its revision.
		return keepCurrent(f, d, timeout)
	default:
		return decision{action: actWaitCatalog, reason: v1alpha1.ReasonCatalogUnavailable, message: fmt.Sprintf("fetching %s: %v", c.target.Bundle, err), upgrade: d.upgrade}
	}
	msg := fmt.Sprintf("%s %s cannot be installed, nothing was applied: %v", f.sub.Spec.Package, c.target.Version, err)
	d.action, d.reason, d.message, d.explanation = actFail, reason, msg, msg
	return d
}

// keepCurrent keeps what is applied: the current revision, or, when it
// failed (the installer stopped in the middle of a rollback), the last
// healthy one. With neither, nothing is applied.
func keepCurrent(f *facts, d decision, timeout time.Duration) decision {
	cur := f.current
	if cur == nil {
		d.action, d.reason = actFail, v1alpha1.ReasonUpgradeFailed
		d.message = "nothing to apply: no revision is installed"
		if d.upgrade != nil {
			d.message = d.upgrade.message
		}
		return d
	}
	if cur.Status.Outcome == v1alpha1.OutcomeRolledBack {
		// The installer stopped in the middle of a rollback: finish it.
		if prev := lastHealthy(f.revisions, 0); prev != nil {
			return gate(f, d, contentOf(prev, reasonRollback, prev.Spec.Revision), timeout)
		}
	}
	// A revision that failed its gate with nothing to return to, or under
	// rollbackPolicy Never, stays in place, failed, until it becomes
	// healthy after all.
	return gate(f, d, contentOf(cur, reasonReconfigure, 0), timeout)
}

func contentOf(rev *v1alpha1.Revision, reason string, rollbackOf int64) *content {
	return &content{target: revision.Target{Catalog: rev.Spec.Catalog, Bundle: rev.Spec.Bundle, Version: rev.Spec.Version}, from: rev, digest: rev.Spec.ContentDigest, reason: reason, rollbackOf: rollbackOf}
}

// gate: content other than what is applied is recorded and applied;
// what is applied is judged by its health.
func gate(f *facts, d decision, want *content, timeout time.Duration) decision {
	d.want = want
	cur := f.current
	if cur == nil || cur.Spec.ContentDigest != want.digest || (d.consumeRetry && cur.Status.Outcome != v1alpha1.OutcomeProgressing && cur.Status.Outcome != v1alpha1.OutcomeHealthy) {
		d.action = actInstall
		d.reason, d.message = installReason(f.sub, want), fmt.Sprintf("applying %s %s", f.sub.Spec.Package, want.target.Version)
		return d
	}
	// The content is what is applied: keep its objects as rendered, or
	// load them from the revision.
	if want.objects == nil {
		want.from = cur
	}
	h := f.health
	if h == nil {
		h = &install.Health{Message: "not checked"}
	}
	switch {
	case f.applyFailed != nil && cur.Status.Outcome == v1alpha1.OutcomeProgressing && pastGate(f.now, cur, timeout):
		// A revision that cannot even be applied by the end of its
		// timeout fails its gate too, healthy or not.
		return missedGate(f, d, "apply failed: "+f.applyFailed.Error())
	case h.Healthy:
		d.action = actInSync
		if d.pending != nil {
			d.action = actHoldForApproval
		}
		return d
	case cur.Status.Outcome == v1alpha1.OutcomeFailed:
		d.action, d.reason = actWaitHealthy, v1alpha1.ReasonHealthGateFailed
		d.message = fmt.Sprintf("revision %d (%s %s) failed its health gate and stays failed until it becomes healthy: %s", cur.Spec.Revision, cur.Spec.Package, cur.Spec.Version, h.Message)
		return d
	case cur.Status.Outcome == v1alpha1.OutcomeProgressing && pastGate(f.now, cur, timeout):
		if h.Blame == install.BlameCluster {
			d.action, d.reason = actWaitCluster, v1alpha1.ReasonWaitingForCluster
			d.message = fmt.Sprintf("%s %s (revision %d) is past its health timeout of %s, but the cluster is to blame, not the revision; waiting: %s", cur.Spec.Package, cur.Spec.Version, cur.Spec.Revision, timeout, joinSemi(nonEmpty(h.BlameMessage, h.Message)))
			return d
		}
		// The revision is to blame (or the blame was not judged).
		return missedGate(f, d, h.Message)
	default:
		d.action, d.reason = actWaitHealthy, v1alpha1.ReasonWaitingForHealthy
		d.message = fmt.Sprintf("waiting for %s %s (revision %d) to become healthy: %s", cur.Spec.Package, cur.Spec.Version, cur.Spec.Revision, h.Message)
		return d
	}
}

// missedGate: the current revision missed its health gate (cause says
// why). It is rolled back to the last healthy revision, or, with nothing
// to return to, marked failed.
func missedGate(f *facts, d decision, cause string) decision {
	d.message, d.reason = cause, v1alpha1.ReasonHealthGateFailed
	if d.prev = rollbackTarget(f, f.current); d.prev != nil {
		d.action = actRollback
		return d
	}
	d.action = actGateFailed
	return d
}

// installReason is the Progressing reason of a new revision.
func installReason(sub *v1alpha1.Subscription, want *content) string {
	switch {
	case want.reason == reasonDowngrade:
		return v1alpha1.ReasonDowngrading
	case sub.Status.InstalledBundle == "":
		return v1alpha1.ReasonInstalling
	case want.reason == reasonRollback:
		return v1alpha1.ReasonRollbackRequested
	default:
		return v1alpha1.ReasonUpgrading
	}
}

// pastGate reports whether a revision has had its whole health timeout.
func pastGate(now time.Time, rev *v1alpha1.Revision, timeout time.Duration) bool {
	started := rev.CreationTimestamp.Time
	if rev.Status.StartedAt != nil {
		started = rev.Status.StartedAt.Time
	}
	return now.Sub(started) > timeout
}

// resolvedUpgrade is the resolved target when it is not the installed bundle.
func resolvedUpgrade(f *facts) *resolver.Target {
	d := f.resolution
	if d == nil || d.Target == nil || f.sub.Status.InstalledBundle == "" || f.sub.Status.InstalledBundle == d.Target.Bundle {
		return nil
	}
	return d.Target
}

func noUpgrade() *note {
	return &note{false, v1alpha1.ReasonNoUpgrade, "no newer version is reachable"}
}

// resolutionProblem says why there is no resolution.
func resolutionProblem(f *facts) string {
	switch {
	case !f.catalog.usable:
		return ""
	case f.resolveErr != nil:
		return f.resolveErr.Error()
	case f.resolution != nil && f.resolution.Explanation != nil:
		return f.resolution.Explanation.Message
	}
	return ""
}

// waitingDependencies lists the dependencies not installed yet, or "".
func waitingDependencies(f *facts) string {
	var waiting []string
	for _, d := range f.dependencies {
		if d.child == nil {
			waiting = append(waiting, fmt.Sprintf("%s (Subscription %s to be created, %s)", d.dep.Package, d.create.Name, d.dep.RequiredBy))
			continue
		}
		switch {
		case d.update != nil:
			waiting = append(waiting, fmt.Sprintf("%s (Subscription %s to be updated to versionRange %q, %s)", d.dep.Package, d.child.Name, d.update.Spec.VersionRange, d.dep.RequiredBy))
		case !isInstalled(d.child):
			waiting = append(waiting, fmt.Sprintf("%s (Subscription %s, %s)", d.dep.Package, d.child.Name, d.dep.RequiredBy))
		default:
			if why := requirementUnmet(d.child, d.versionRange); why != "" {
				waiting = append(waiting, fmt.Sprintf("%s (Subscription %s: %s, %s)", d.dep.Package, d.child.Name, why, d.dep.RequiredBy))
			}
		}
	}
	return joinSemi(waiting)
}
