package subscription

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/resolver"
)

// phase is where the Subscription stands after its action.
type phase int

const (
	// phaseWaiting: nothing was applied; waiting for something outside
	// (a catalog, dependencies).
	phaseWaiting phase = iota
	// phaseHeld: nothing was changed on purpose (paused).
	phaseHeld
	// phaseProgressing: a revision is applied and not healthy yet.
	phaseProgressing
	// phaseHealthy: the current revision is healthy.
	phaseHealthy
	// phaseFailed: the Subscription cannot proceed; what is installed, if
	// anything, keeps running.
	phaseFailed
)

// result is what an action did, for summarize.
type result struct {
	phase phase
	// progressing is the Progressing condition; installed the Installed
	// condition (nil: derived); rolledBack the RolledBack condition (nil:
	// left as it is).
	progressing, installed, rolledBack *note
	// explanation replaces the decision's when set.
	explanation *string
	// rev is the revision applied or kept; nil when none.
	rev *v1alpha1.Revision
	// requeue is when to look again; the decision's when zero.
	requeue time.Duration
	// err is a failure to be retried.
	err error
	// applyFailed is err when it is the current revision's apply failing
	// past its health timeout: a fact for decide (Reconciler.run).
	applyFailed error
}

// summarize writes, once per reconcile, what the facts, the decision and
// the action's result say: the conditions and status.state. It is the only
// place status.state is assigned.
func summarize(f *facts, d decision, res result) {
	sub := f.sub
	summarizeResolution(f, d)
	summarizeCandidates(sub, f.resolution, f.resolveErr)
	summarizeDeprecation(sub, f.deprecation)
	if d.upgrade != nil {
		setCondition(sub, v1alpha1.TypeUpgradeAvailable, boolStatus(d.upgrade.status), d.upgrade.reason, d.upgrade.message)
	}
	if f.candidate != nil {
		sub.Status.AvailableUpgrade = d.pending
	}
	if c := f.candidate; c != nil && c.crd != nil {
		switch {
		case len(c.crd.Findings) == 0:
			setCondition(sub, v1alpha1.TypeCRDUpgradeSafe, metav1.ConditionTrue, v1alpha1.ReasonCRDSafe, "the CRD changes keep every stored version and every custom resource valid")
		case !c.crd.Blocked:
			setCondition(sub, v1alpha1.TypeCRDUpgradeSafe, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, "proceeding under crdUpgradeSafety: Warn: "+joinSemi(c.crd.Findings))
		default:
			setCondition(sub, v1alpha1.TypeCRDUpgradeSafe, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, d.explanation)
		}
	}
	explanation := d.explanation
	if res.explanation != nil {
		explanation = *res.explanation
	}
	if f.pin != nil || f.resolution != nil || f.resolveErr != nil || explanation != "" {
		sub.Status.Explanation = explanation
	}
	if res.rolledBack != nil {
		setCondition(sub, v1alpha1.TypeRolledBack, boolStatus(res.rolledBack.status), res.rolledBack.reason, res.rolledBack.message)
	}
	prog := res.progressing
	if prog == nil {
		prog = &note{res.phase == phaseProgressing || res.phase == phaseWaiting, d.reason, d.message}
	}
	if prog.reason == "" && res.err != nil {
		// The action failed before it said what it did: say that it is
		// retried, and why (a condition without a reason is refused).
		prog = &note{true, v1alpha1.ReasonRetrying, "retrying: " + res.err.Error()}
	}
	if prog.reason == "" {
		// Nothing to say: the condition is kept as it was.
		if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeProgressing); c != nil {
			prog = &note{c.Status == metav1.ConditionTrue, c.Reason, c.Message}
		} else {
			prog = &note{false, v1alpha1.ReasonRetrying, "nothing is in progress"}
		}
	}
	setCondition(sub, v1alpha1.TypeProgressing, boolStatus(prog.status), prog.reason, prog.message)
	if inst := installedNote(sub, res, prog); inst != nil {
		setCondition(sub, v1alpha1.TypeInstalled, boolStatus(inst.status), inst.reason, inst.message)
	}
	sub.Status.State = stateOf(sub, d, res)
	ready := readyNote(sub)
	setCondition(sub, v1alpha1.TypeReady, boolStatus(ready.status), ready.reason, ready.message)
}

// readyNote is the Ready condition: True when the operator is installed
// and healthy and nothing is in progress or failed; otherwise the reason
// and message of the condition that says why not.
func readyNote(sub *v1alpha1.Subscription) note {
	prog := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeProgressing)
	inst := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeInstalled)
	switch {
	case prog != nil && prog.Status == metav1.ConditionTrue:
		return note{false, prog.Reason, prog.Message}
	case inst == nil:
		return note{false, v1alpha1.ReasonNotInstalled, "nothing is installed yet"}
	case inst.Status != metav1.ConditionTrue:
		return note{false, inst.Reason, inst.Message}
	case sub.Status.State == v1alpha1.StateFailed && prog != nil:
		return note{false, prog.Reason, prog.Message}
	}
	return note{true, inst.Reason, inst.Message}
}

// summarizeUntrusted says in the status that a stored revision this
// reconcile needed was refused (err), and returns the message.
func summarizeUntrusted(sub *v1alpha1.Subscription, err error) string {
	msg := err.Error()
	setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonRevisionUntrusted, msg)
	ready := readyNote(sub)
	setCondition(sub, v1alpha1.TypeReady, boolStatus(ready.status), ready.reason, ready.message)
	sub.Status.Explanation = msg
	return msg
}

// summarizeResolution writes what the catalogs and the resolver said.
func summarizeResolution(f *facts, d decision) {
	sub := f.sub
	if p := f.pin; p != nil {
		switch {
		case d.action == actRefuse:
			setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, d.reason, d.message)
		case p.rev != nil && p.err == nil:
			setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonPinned,
				fmt.Sprintf("pinned to revision %d (%s %s) by spec.rollbackTo; remove it to resume upgrades", p.revision, p.rev.Spec.Package, p.rev.Spec.Version))
		}
		return
	}
	if !sub.DeletionTimestamp.IsZero() || (f.catalog.message == "" && f.resolution == nil) {
		// Not observed (deleting, or the installer may not act).
		return
	}
	if f.catalog.reachable {
		setCondition(sub, v1alpha1.TypeCatalogReachable, metav1.ConditionTrue, v1alpha1.ReasonConnected, f.catalog.message)
	} else {
		setCondition(sub, v1alpha1.TypeCatalogReachable, metav1.ConditionFalse, v1alpha1.ReasonCatalogUnavailable, f.catalog.message)
	}
	if f.catalog.digest != "" {
		sub.Status.CatalogDigest = f.catalog.digest
	}
	switch r := f.resolution; {
	case !f.catalog.usable:
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonCatalogUnavailable, f.catalog.message)
	case f.resolveErr != nil:
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonUnsatisfiable, f.resolveErr.Error())
	case r == nil:
		// Not resolved in this reconcile.
	case r.Status == resolver.StatusUnsatisfiable:
		sub.Status.LatestVersion = f.latest
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonUnsatisfiable, r.Explanation.Message)
	case f.candidate != nil && f.candidate.reason == reasonDowngrade:
		sub.Status.LatestVersion = f.latest
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonDowngrading,
			fmt.Sprintf("downgrading to %s %s: the installed %s is outside versionRange %q and allowDowngrade is set", sub.Spec.Package, f.candidate.target.Version, sub.Status.InstalledVersion, sub.Spec.VersionRange))
	default:
		sub.Status.LatestVersion = f.latest
		t := r.Target
		msg := fmt.Sprintf("%s %s from catalog %q, channel %q", t.Package, t.Version, t.Catalog, t.Channel)
		if len(r.Warnings) > 0 {
			msg += "; " + strings.Join(r.Warnings, "; ")
		}
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonResolved, msg)
	}
}

// installedNote is the Installed condition after the action.
func installedNote(sub *v1alpha1.Subscription, res result, prog *note) *note {
	switch {
	case res.installed != nil:
		return res.installed
	case sub.Status.InstalledVersion == "":
		switch res.phase {
		case phaseFailed:
			return &note{false, prog.reason, prog.message}
		case phaseProgressing:
			return &note{false, v1alpha1.ReasonInstalling, prog.message}
		case phaseWaiting:
			if prog.reason == v1alpha1.ReasonDependencyNotReady {
				return &note{false, prog.reason, prog.message}
			}
		}
		return nil
	case res.phase == phaseProgressing && res.rev != nil && !upgrading(sub, res.rev):
		return &note{false, v1alpha1.ReasonWaitingForHealthy, prog.message}
	}
	return nil
}

// upgrading reports whether rev replaces what is installed by another
// version (an upgrade, a downgrade, or restoring another revision).
func upgrading(sub *v1alpha1.Subscription, rev *v1alpha1.Revision) bool {
	return sub.Status.InstalledBundle != "" && (sub.Status.InstalledBundle != rev.Spec.Bundle ||
		(rev.Spec.Reason == reasonRollback && rev.Status.Outcome == v1alpha1.OutcomeProgressing && sub.Status.InstalledVersion != rev.Spec.Version))
}

// stateOf is status.state after the action.
func stateOf(sub *v1alpha1.Subscription, d decision, res result) v1alpha1.SubscriptionState {
	installed := sub.Status.InstalledVersion != ""
	switch {
	case d.action == actHold:
		return v1alpha1.StatePaused
	case d.action == actRollback && res.err == nil:
		return v1alpha1.StateUpgrading
	case res.phase == phaseFailed && (!installed || d.action == actGateFailed || d.reason == v1alpha1.ReasonHealthGateFailed):
		return v1alpha1.StateFailed
	case !installed && d.action == actWaitCatalog && d.reason == v1alpha1.ReasonCatalogUnavailable && res.phase == phaseWaiting && sub.Status.CurrentRevision == 0:
		return v1alpha1.StateResolving
	case !installed:
		return v1alpha1.StateInstalling
	case res.phase == phaseProgressing && res.rev != nil && upgrading(sub, res.rev):
		return v1alpha1.StateUpgrading
	case sub.Status.AvailableUpgrade != nil:
		return v1alpha1.StateUpgradePending
	default:
		return v1alpha1.StateInstalled
	}
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

// setCondition is the one way conditions are set: it records the generation.
func setCondition(sub *v1alpha1.Subscription, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&sub.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, 32768), ObservedGeneration: sub.Generation,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func joinSemi(items []string) string { return strings.Join(items, "; ") }

// nonEmpty returns the non-empty strings of ss.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isInstalled(s *v1alpha1.Subscription) bool {
	return meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeInstalled)
}
