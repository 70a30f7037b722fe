package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RevisionOutcome is what became of a revision.
// +kubebuilder:validation:Enum=Progressing;Healthy;Failed;RolledBack;Superseded
type RevisionOutcome string

// Revision outcomes.
const (
	// OutcomeProgressing: applied, waiting for the health gate.
	OutcomeProgressing RevisionOutcome = "Progressing"
	// OutcomeHealthy: passed the health gate; it is (or was) the running revision.
	OutcomeHealthy RevisionOutcome = "Healthy"
	// OutcomeFailed: failed the health gate and could not be rolled back.
	OutcomeFailed RevisionOutcome = "Failed"
	// OutcomeRolledBack: failed the health gate; the previous healthy revision was restored.
	OutcomeRolledBack RevisionOutcome = "RolledBack"
	// OutcomeSuperseded: replaced by a later revision before it finished.
	OutcomeSuperseded RevisionOutcome = "Superseded"
)

// RevisionSpec is the immutable record of one install or upgrade.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a revision is immutable"
type RevisionSpec struct {
	// subscription is the name of the Subscription, in the same namespace.
	// +kubebuilder:validation:MinLength=1
	Subscription string `json:"subscription"`

	// revision numbers a Subscription's revisions from 1, in order.
	// +kubebuilder:validation:Minimum=1
	Revision int64 `json:"revision"`

	// catalog is the CatalogSource the bundle came from.
	// +optional
	Catalog string `json:"catalog,omitempty"`

	// package of the operator.
	Package string `json:"package"`

	// version of the bundle.
	Version string `json:"version"`

	// bundle is the bundle (CSV) name.
	Bundle string `json:"bundle"`

	// contentDigest is "sha256:<hex>" of the rendered objects.
	ContentDigest string `json:"contentDigest"`

	// objects says where the rendered objects are kept: gzip-compressed JSON,
	// split into content-addressed, immutable Secrets in this namespace, so
	// that the record stays small whatever the size of the bundle.
	Objects RevisionObjects `json:"objects"`

	// reason says why the revision was made: Install, Upgrade, Reconfigure
	// (the same version with a new configuration), Rollback or Downgrade.
	// +optional
	Reason string `json:"reason,omitempty"`

	// rollbackOf is the revision whose objects this one restores, for rollbacks.
	// +optional
	RollbackOf int64 `json:"rollbackOf,omitempty"`
}

// RevisionObjects locates a revision's rendered objects.
type RevisionObjects struct {
	// count is the number of objects.
	Count int32 `json:"count"`
	// blobs are the names of the Secrets holding the compressed objects, in order.
	// +listType=atomic
	Blobs []string `json:"blobs"`
	// size is the compressed size in bytes.
	Size int64 `json:"size"`
}

// RevisionStatus records how the revision ended.
type RevisionStatus struct {
	// outcome is Progressing, Healthy, Failed, RolledBack or Superseded.
	// +optional
	Outcome RevisionOutcome `json:"outcome,omitempty"`
	// message explains the outcome, e.g. why the health gate failed.
	// +optional
	Message string `json:"message,omitempty"`
	// startedAt is when the revision was applied.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// finishedAt is when the outcome was decided.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// Revision is one install or upgrade of a Subscription: what was applied,
// and how it ended. Revisions are kept after the Subscription's
// revisionHistoryLimit is reached, oldest first out.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rev;revs
// +kubebuilder:printcolumn:name="Subscription",type=string,JSONPath=`.spec.subscription`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`
// +kubebuilder:printcolumn:name="Outcome",type=string,JSONPath=`.status.outcome`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Revision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the immutable record of what was applied.
	// +required
	Spec RevisionSpec `json:"spec"`

	// status records how the revision ended.
	// +optional
	Status RevisionStatus `json:"status,omitempty"`
}

// RevisionList is a list of Revisions.
//
// +kubebuilder:object:root=true
type RevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Revision `json:"items"`
}
