package subscription

import (
	"errors"

	corev1 "k8s.io/api/core/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// The actions of this file change nothing in the cluster: they only say,
// through summarize, why nothing happens.

// hold: spec.paused.
func hold(d decision) result {
	return result{phase: phaseHeld, progressing: &note{false, d.reason, d.message}}
}

// waitCatalog: no catalog content, or the target's manifests cannot be
// fetched now.
func waitCatalog(d decision) result {
	return result{phase: phaseWaiting, progressing: &note{true, d.reason, d.message}}
}

// markFailed: nothing can be applied now (the installer may not act, a
// refused rollbackTo, an unsatisfiable spec, a bad bundle, a blocked CRD
// change, a version that failed before); what is installed keeps running.
func (r *Reconciler) markFailed(x *exec, d decision) result {
	res := result{phase: phaseFailed, progressing: &note{false, d.reason, d.message}}
	switch d.action {
	case actCannotAct:
		x.log.Info("cannot act", "subscription", x.sub.Name, "reason", d.reason, "message", d.message)
	case actRefuse:
		if d.reason == v1alpha1.ReasonRevisionUntrusted {
			r.Recorder.Eventf(x.sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevisionUntrusted, "Rollback", "%s", d.message)
			x.log.Info("revision refused", "subscription", x.sub.Name, "revision", x.sub.Spec.RollbackTo.Revision, "reason", d.message)
		}
	case actFail:
		switch d.reason {
		case v1alpha1.ReasonUnsatisfiable:
			if x.sub.Status.InstalledVersion == "" {
				res.installed = &note{false, v1alpha1.ReasonNotInstalled, "nothing is installed: the Subscription cannot be resolved"}
			}
		case v1alpha1.ReasonInvalidBundle, v1alpha1.ReasonUnsupportedMode, v1alpha1.ReasonContentMismatch:
			// The version itself cannot be installed: say so once per
			// reconcile (the recorder counts repeats in one series).
			r.Recorder.Eventf(x.sub, nil, corev1.EventTypeWarning, d.reason, "Render", "%s", d.message)
		}
	}
	return res
}

// cannotActReason is the condition reason of an error of applierFor.
func cannotActReason(err error) string {
	var ca *CannotActError
	if errors.As(err, &ca) && ca.Reason != "" {
		return ca.Reason
	}
	return v1alpha1.ReasonCannotAct
}
