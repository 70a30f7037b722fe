package resolver

import (
	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/internal/catalog"
)

// Snapshot is one catalog as the resolver sees it.
type Snapshot struct {
	// Name identifies the catalog in subscriptions, installed records and messages.
	Name string
	// Priority orders catalogs when several offer a dependency: higher wins.
	Priority int
	Catalog  *catalog.Catalog
}

// Installed is an operator running in the cluster.
type Installed struct {
	// Namespace is the install scope; "" means a cluster-wide install.
	Namespace string
	Package   string
	Version   semver.Version
	// Bundle is the installed bundle (CSV) name. Optional: when empty it is
	// looked up by version in the source catalog.
	Bundle string
	// Catalog is the catalog the operator was installed from.
	Catalog string
	// Provides lists the APIs the operator owns. Optional: used only when the
	// bundle is not found in any catalog.
	Provides []catalog.GVK
}

// Approval says whether a subscription's installs need a person's consent.
type Approval string

// Approval modes.
const (
	ApprovalAutomatic Approval = "Automatic"
	ApprovalManual    Approval = "Manual"
)

// Subscription asks for a package to be installed and kept up to date.
type Subscription struct {
	// Namespace is the install scope of the subscription and of its dependencies.
	Namespace string
	Name      string
	// Catalog names the catalog to install from; "" means the catalog with the
	// highest priority that has the package.
	Catalog string
	Package string
	// Channel to follow; "" means the package's default channel.
	Channel string
	// Range limits the versions, e.g. ">=1.2.0 <2.0.0"; "" allows any.
	Range string
	// StartingVersion pins the version of a fresh install; ignored once the
	// package is installed.
	StartingVersion string
	Approval        Approval
	// ApprovedVersion is the version a person approved, for Manual approval.
	// When it is reachable from the installed bundle (an upgrade edge,
	// within the channel and the range) it is the target even if a newer
	// version exists; otherwise Decision.ApprovedUnreachable says why not.
	ApprovedVersion string
	// AllowDowngrade lets an installed version outside Range be replaced by
	// the highest version of the channel within the range below it
	// (StatusDowngrade). Without it the installed version stays, with a
	// warning.
	AllowDowngrade bool
}

// Key is "namespace/name".
func (s Subscription) Key() string { return s.Namespace + "/" + s.Name }

// Request is everything one resolution looks at.
type Request struct {
	Catalogs      []Snapshot
	Installed     []Installed
	Subscriptions []Subscription
	// KubeVersion is the cluster's Kubernetes version. When set, a
	// subscription's candidate whose minimum Kubernetes version
	// (MinKubeVersion) is above it is passed over up front with
	// ReasonKubeVersion, one whose minimum is not a version with
	// ReasonInvalidMinKubeVersion. nil: not checked.
	KubeVersion *semver.Version
	// MinKubeVersion reports a bundle's minimum Kubernetes version, its
	// ClusterServiceVersion's spec.minKubeVersion as written ("" for none),
	// and whether it is known. It is called during resolution and must not
	// block. nil: no minimum is known.
	MinKubeVersion func(catalog string, b *catalog.Bundle) (string, bool)
}

// Result holds one Decision per subscription, in the order of the request.
type Result struct {
	Decisions []Decision
}

// Decision lookup by subscription key ("namespace/name"); nil if absent.
func (r Result) Decision(key string) *Decision {
	for i := range r.Decisions {
		if r.Decisions[i].Subscription == key {
			return &r.Decisions[i]
		}
	}
	return nil
}

// Status summarizes a Decision.
type Status string

// Decision statuses.
const (
	// StatusInstall: the package is not installed; Target is to be installed.
	StatusInstall Status = "Install"
	// StatusUpgrade: Target replaces the installed bundle along Edge.
	StatusUpgrade Status = "Upgrade"
	// StatusDowngrade: Target, a lower version within the range, replaces
	// an installed bundle outside it (Subscription.AllowDowngrade).
	StatusDowngrade Status = "Downgrade"
	// StatusUpToDate: the installed bundle stays.
	StatusUpToDate Status = "UpToDate"
	// StatusUnsatisfiable: nothing can be done; Explanation says why.
	StatusUnsatisfiable Status = "Unsatisfiable"
)

// Decision is the answer for one subscription.
type Decision struct {
	// Subscription is the key "namespace/name".
	Subscription string
	Status       Status
	// Target is the bundle the subscription should run; nil when unsatisfiable.
	Target *Target
	Edge   Edge
	// Dependencies to install for the target, in the order they were found.
	Dependencies []Dependency
	// Rejected lists every bundle of the package that was not chosen, with why.
	Rejected []Rejection
	// Candidates is the bounded view of the bundles looked at, for a
	// status: the target first (Chosen), then the candidates passed over,
	// most preferred first, then the bundles filtered out up front (not in
	// the channel, outside the range, no upgrade edge, ...), at most
	// MaxCandidateReasons entries, each message at most
	// MaxCandidateMessageBytes. CandidatesOmitted counts the entries left out.
	Candidates        []CandidateReason
	CandidatesOmitted int
	// Warnings about the choice (deprecations, installed version outside the range).
	Warnings []string
	// NeedsApproval is true when Approval is Manual, the target upgrades the
	// installed bundle and the approved version is not the target's. A
	// first install and a downgrade need no approval.
	NeedsApproval bool
	// ApprovedUnreachable says why the subscription's approved version is
	// not the target (not in the channel, no upgrade edge from the installed
	// bundle, outside the range, not chosen); empty when it is the target or
	// none is set.
	ApprovedUnreachable string
	// Latest is the highest version of the channel within the range, edges
	// aside; nil when there is none.
	Latest *semver.Version
	// OutsideRange is true when the installed version is outside the range.
	OutsideRange bool
	// Explanation is set when Status is StatusUnsatisfiable.
	Explanation *Explanation
}

// Target names the chosen bundle.
type Target struct {
	Catalog string
	Package string
	Bundle  string
	Version semver.Version
	Channel string
}

// EdgeKind is how the target is reached.
type EdgeKind string

// Edge kinds.
const (
	EdgeInstall   EdgeKind = "install"
	EdgeReplaces  EdgeKind = "replaces"
	EdgeSkips     EdgeKind = "skips"
	EdgeSkipRange EdgeKind = "skipRange"
	// EdgeDowngrade: a lower version replaces an installed one outside the
	// range (Subscription.AllowDowngrade).
	EdgeDowngrade EdgeKind = "downgrade"
	// EdgeNone: the installed bundle stays.
	EdgeNone EdgeKind = "none"
)

// Edge is the upgrade edge taken.
type Edge struct {
	Kind EdgeKind
	// From is the installed bundle name (empty for a fresh install).
	From string
}

// Dependency is a bundle installed because the target needs it.
type Dependency struct {
	Catalog   string
	Package   string
	Bundle    string
	Version   semver.Version
	Namespace string
	// RequiredBy is the link that needs it, e.g. `etcd 0.9.4 requires prometheus >=2.0.0`.
	RequiredBy string
}

// Reason classifies why a candidate was rejected.
type Reason string

// Rejection reasons.
const (
	ReasonOutsideRange       Reason = "OutsideRange"
	ReasonNotInChannel       Reason = "NotInChannel"
	ReasonNoEdge             Reason = "NoUpgradeEdge"
	ReasonDowngrade          Reason = "Downgrade"
	ReasonNotStartingVersion Reason = "NotStartingVersion"
	ReasonDeprecated         Reason = "Deprecated"
	ReasonDependency         Reason = "DependencyUnsatisfiable"
	// ReasonConstraint: a constraint the bundle declares (olm.constraint,
	// olm.label.required) is met by no bundle that can be installed.
	ReasonConstraint Reason = "ConstraintUnsatisfiable"
	// ReasonInvalidConstraint: a constraint the bundle declares cannot be
	// evaluated (a CEL rule that does not compile, a malformed or
	// oversized constraint); the message names the property and why.
	ReasonInvalidConstraint Reason = "InvalidConstraint"
	// ReasonKubeVersion: the bundle requires a newer Kubernetes than the
	// cluster's (Request.KubeVersion).
	ReasonKubeVersion Reason = "KubeVersionTooOld"
	// ReasonInvalidMinKubeVersion: the bundle's minimum Kubernetes version
	// is not a version.
	ReasonInvalidMinKubeVersion Reason = "InvalidMinKubeVersion"
	ReasonConflict              Reason = "Conflict"
	ReasonNotPreferred          Reason = "NotPreferred"
	ReasonInstalled             Reason = "Installed"
)

// Rejection is a bundle that was not chosen.
type Rejection struct {
	Catalog string
	Bundle  string
	Version semver.Version
	Reason  Reason
	Message string
}

// Bounds of Decision.Candidates.
const (
	// MaxCandidateReasons is the most entries Decision.Candidates holds.
	MaxCandidateReasons = 16
	// MaxCandidateMessageBytes is the longest message of one entry; a
	// longer one is cut at a character boundary and ends in "…".
	MaxCandidateMessageBytes = 1024
)

// CandidateReason is one bundle the resolver looked at for a subscription
// and what became of it.
type CandidateReason struct {
	// Catalog the bundle is from.
	Catalog string
	// Bundle is the bundle (CSV) name.
	Bundle string
	// Version is the bundle's version.
	Version semver.Version
	// Chosen is true for the target.
	Chosen bool
	// Reason classifies why the bundle was passed over; "" when chosen.
	Reason Reason
	// Message says why for people, naming the constraint, dependency or
	// conflict; for the target, how it is reached.
	Message string
}

// Code classifies an Explanation.
type Code string

// Explanation codes.
const (
	CodeInvalid     Code = "InvalidSubscription"
	CodeNoCatalog   Code = "CatalogNotFound"
	CodeNoPackage   Code = "PackageNotFound"
	CodeNoChannel   Code = "ChannelNotFound"
	CodeNoCandidate Code = "NoCandidate"
	// CodeKubeVersion: every candidate requires a newer Kubernetes than the
	// cluster's, or declares a minimum that is not a version.
	CodeKubeVersion Code = "KubeVersionUnsatisfiable"
	CodeDependency  Code = "DependencyUnsatisfiable"
	// CodeConstraint: every candidate declares a constraint that cannot be met or evaluated.
	CodeConstraint     Code = "ConstraintUnsatisfiable"
	CodeConflict       Code = "Conflict"
	CodeLinkedConflict Code = "LinkedConflict"
)

// Explanation says why a subscription cannot be satisfied. It is an error.
type Explanation struct {
	Code Code
	// Message is the whole explanation for people.
	Message string
	// Facts is the chain of facts that proves it, in order.
	Facts []string
	// Linked names the other subscriptions that fail with this one because a
	// dependency links them; Link says what links them.
	Linked []string
	Link   string
}

func (e *Explanation) Error() string { return e.Message }
