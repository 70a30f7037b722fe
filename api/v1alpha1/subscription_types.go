package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Approval says who decides that an upgrade happens.
// +kubebuilder:validation:Enum=Automatic;Manual
type Approval string

// Approval values.
const (
	// ApprovalAutomatic upgrades as soon as a newer version is reachable.
	ApprovalAutomatic Approval = "Automatic"
	// ApprovalManual upgrades only to the version set in approvedVersion.
	ApprovalManual Approval = "Manual"
)

// InstallMode is which namespaces the installed operator watches.
// +kubebuilder:validation:Enum=OwnNamespace;SingleNamespace;MultiNamespace;AllNamespaces
type InstallMode string

// Install modes.
const (
	// InstallModeOwnNamespace: the operator watches the Subscription's namespace.
	InstallModeOwnNamespace InstallMode = "OwnNamespace"
	// InstallModeSingleNamespace: the operator watches the one namespace
	// spec.targetNamespaces names, another than the Subscription's.
	InstallModeSingleNamespace InstallMode = "SingleNamespace"
	// InstallModeMultiNamespace: the operator watches the namespaces
	// spec.targetNamespaces names.
	InstallModeMultiNamespace InstallMode = "MultiNamespace"
	// InstallModeAllNamespaces: the operator watches every namespace.
	InstallModeAllNamespaces InstallMode = "AllNamespaces"
)

// InstallModes lists every install mode, in the order messages name them.
var InstallModes = []InstallMode{InstallModeOwnNamespace, InstallModeSingleNamespace, InstallModeMultiNamespace, InstallModeAllNamespaces}

// MaxTargetNamespaces bounds spec.targetNamespaces (the MaxItems marker of
// the field repeats it).
const MaxTargetNamespaces = 32

// CRDDeletionPolicy says what happens to CRDs when a Subscription is deleted.
// +kubebuilder:validation:Enum=Keep;Delete
type CRDDeletionPolicy string

// CRD deletion policies.
const (
	// CRDDeletionKeep keeps CRDs, and so every custom resource, on uninstall.
	CRDDeletionKeep CRDDeletionPolicy = "Keep"
	// CRDDeletionDelete deletes the CRDs the Subscription installed, and with
	// them every custom resource of those kinds in the cluster.
	CRDDeletionDelete CRDDeletionPolicy = "Delete"
)

// SubscriptionSpec says which operator to install and how to keep it current.
// +kubebuilder:validation:XValidation:rule="!has(self.approvedVersion) || self.approval == 'Manual'",message="approvedVersion is only used with approval: Manual"
// +kubebuilder:validation:XValidation:rule="(has(self.installMode) && (self.installMode == 'SingleNamespace' || self.installMode == 'MultiNamespace')) == (has(self.targetNamespaces) && size(self.targetNamespaces) > 0)",message="targetNamespaces is required with installMode SingleNamespace or MultiNamespace and not allowed with any other"
// +kubebuilder:validation:XValidation:rule="!has(self.installMode) || self.installMode != 'SingleNamespace' || !has(self.targetNamespaces) || size(self.targetNamespaces) == 1",message="installMode SingleNamespace takes exactly one target namespace"
type SubscriptionSpec struct {
	// catalog is the name of the CatalogSource to install from. When empty,
	// every CatalogSource is searched and the one with the highest priority
	// that has the package wins.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Catalog string `json:"catalog,omitempty"`

	// package is the name of the operator package. It cannot be changed;
	// create another Subscription instead.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="package is immutable"
	// +required
	Package string `json:"package"`

	// serviceAccountName is the ServiceAccount, in the Subscription's
	// namespace, the installer acts as for every write this Subscription
	// makes: the operator's objects, CRDs, RBAC, dependency Subscriptions
	// and the deletes of an upgrade or uninstall. Kubernetes' RBAC, with its
	// checks on Roles and bindings, so bounds what the Subscription can
	// install. When empty, the installer's --default-service-account is
	// used; when that is empty too, nothing is installed. Authors must be
	// allowed to impersonate the ServiceAccount they name.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// channel to follow. When empty, the package's default channel.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Channel string `json:"channel,omitempty"`

	// versionRange limits the versions installed, as a semver range such as
	// ">=1.2.0 <2.0.0". When empty, any version of the channel.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	VersionRange string `json:"versionRange,omitempty"`

	// startingVersion is the version installed first, instead of the newest
	// one. Later upgrades follow the channel from there.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	StartingVersion string `json:"startingVersion,omitempty"`

	// approval says whether upgrades happen on their own (Automatic) or only
	// to the version named in approvedVersion (Manual). The first install
	// always happens.
	// +kubebuilder:default=Automatic
	// +optional
	Approval Approval `json:"approval,omitempty"`

	// approvedVersion is the version a Manual subscription may upgrade to.
	// Set it to the version in status.availableUpgrade to approve that
	// upgrade; anything else approves nothing.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ApprovedVersion string `json:"approvedVersion,omitempty"`

	// installMode is which namespaces the operator watches: OwnNamespace
	// (the Subscription's), SingleNamespace or MultiNamespace (those
	// targetNamespaces names) or AllNamespaces. When empty, AllNamespaces if
	// the operator supports it, otherwise OwnNamespace.
	// +optional
	InstallMode InstallMode `json:"installMode,omitempty"`

	// targetNamespaces are the namespaces a SingleNamespace (exactly one,
	// not the Subscription's) or MultiNamespace operator watches; required
	// with those modes, not allowed with the others. The operator's
	// permissions become a Role and RoleBinding in each of them and in the
	// Subscription's namespace.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	TargetNamespaces []string `json:"targetNamespaces,omitempty"`

	// config is applied to every Deployment of the operator.
	// +optional
	Config *SubscriptionConfig `json:"config,omitempty"`

	// paused stops every change to the installed operator: no upgrade, no
	// drift correction. Status is still reported.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// revisionHistoryLimit is how many Revisions are kept.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`

	// healthTimeout is how long a new revision may take to become healthy
	// (every Deployment rolled out and available, every CRD established)
	// before it counts as failed.
	// +kubebuilder:default="5m"
	// +optional
	HealthTimeout *metav1.Duration `json:"healthTimeout,omitempty"`

	// rollbackPolicy says what happens when an upgrade fails its health gate:
	// Automatic (the default) restores the previous healthy revision; Never
	// leaves the failed revision in place.
	// +kubebuilder:default=Automatic
	// +optional
	RollbackPolicy RollbackPolicy `json:"rollbackPolicy,omitempty"`

	// rollbackTo restores a revision from status history and pins the
	// Subscription to it: no upgrade happens while it is set. It works even
	// when the catalog no longer has that version.
	// +optional
	RollbackTo *RollbackTarget `json:"rollbackTo,omitempty"`

	// allowDowngrade lets the installer move to a lower version when the
	// installed one falls outside versionRange (pin an older version by
	// narrowing the range). Without it, a downgrade is never made.
	// +optional
	AllowDowngrade bool `json:"allowDowngrade,omitempty"`

	// crdUpgradeSafety says what happens when a new version would change a
	// CRD in a way that loses or invalidates data: Strict (the default)
	// blocks the upgrade, Warn reports and proceeds, None skips the checks.
	// +kubebuilder:default=Strict
	// +optional
	CRDUpgradeSafety CRDUpgradeSafety `json:"crdUpgradeSafety,omitempty"`

	// crdDeletionPolicy says what happens to the CRDs this Subscription
	// installed when it is deleted. Keep (the default) keeps them and every
	// custom resource; Delete removes them, and all their custom resources.
	// +kubebuilder:default=Keep
	// +optional
	CRDDeletionPolicy CRDDeletionPolicy `json:"crdDeletionPolicy,omitempty"`

	// adoption says what happens when an object the operator installs
	// already exists and was not created by Ferry for this Subscription.
	// With policy None (the default) the install stops before anything is
	// applied, and the condition names the object and who manages it; the
	// object is never changed nor deleted. With AdoptUnmanaged an object no
	// Ferry Subscription owns is taken over: from then on Ferry changes it,
	// and deletes it when the operator no longer ships it or is uninstalled.
	// Objects of another Subscription, and CRDs of another package, are
	// never adopted.
	// +optional
	Adoption *AdoptionSpec `json:"adoption,omitempty"`
}

// AdoptionPolicy says whether existing objects may be taken over.
// +kubebuilder:validation:Enum=None;AdoptUnmanaged
type AdoptionPolicy string

// Adoption policies.
const (
	// AdoptionNone never takes over an existing object.
	AdoptionNone AdoptionPolicy = "None"
	// AdoptionAdoptUnmanaged takes over existing objects that no Ferry
	// Subscription owns.
	AdoptionAdoptUnmanaged AdoptionPolicy = "AdoptUnmanaged"
)

// AdoptionSpec is the opt-in to take over existing objects.
type AdoptionSpec struct {
	// policy is None (the default: an existing object stops the install) or
	// AdoptUnmanaged (an existing object no Ferry Subscription owns is taken
	// over, changed and, on uninstall, deleted).
	// +kubebuilder:default=None
	// +optional
	Policy AdoptionPolicy `json:"policy,omitempty"`
}

// RollbackPolicy says what happens when an upgrade fails its health gate.
// +kubebuilder:validation:Enum=Automatic;Never
type RollbackPolicy string

// Rollback policies.
const (
	RollbackAutomatic RollbackPolicy = "Automatic"
	RollbackNever     RollbackPolicy = "Never"
)

// CRDUpgradeSafety is the policy for CRD changes that may lose data.
// +kubebuilder:validation:Enum=Strict;Warn;None
type CRDUpgradeSafety string

// CRD upgrade safety policies.
const (
	CRDSafetyStrict CRDUpgradeSafety = "Strict"
	CRDSafetyWarn   CRDUpgradeSafety = "Warn"
	CRDSafetyNone   CRDUpgradeSafety = "None"
)

// RollbackTarget names a revision to restore.
type RollbackTarget struct {
	// revision is the number of a Revision of this Subscription.
	// +kubebuilder:validation:Minimum=1
	Revision int64 `json:"revision"`
}

// SubscriptionConfig overrides parts of the operator's Deployments.
type SubscriptionConfig struct {
	// env is merged into every container's environment; a variable of the
	// same name replaces the bundle's value (e.g. REGION).
	// +listType=map
	// +listMapKey=name
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// resources replaces every container's resource requirements.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// nodeSelector is merged into the pods' node selector.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations are added to the pods' tolerations.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// envFrom is appended to every container's envFrom; an entry equal to
	// one the bundle already has is not added twice.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`

	// volumes are added to the pods; a volume of the same name replaces the
	// bundle's.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Volumes []corev1.Volume `json:"volumes,omitempty"`

	// volumeMounts are added to every container; the mounts of a name
	// replace every mount of the bundle's of that name.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// affinity replaces the pods' affinity part by part: each of
	// nodeAffinity, podAffinity and podAntiAffinity that is set replaces the
	// bundle's (set but empty removes it); an empty affinity removes all
	// three.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// annotations are added to every Deployment and its pod template. A key
	// the bundle or Ferry already sets keeps its value.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SubscriptionState is the one-word summary of a Subscription.
// +kubebuilder:validation:Enum=Resolving;Installing;Installed;UpgradePending;Upgrading;Paused;Failed
type SubscriptionState string

// Subscription states.
const (
	StateResolving      SubscriptionState = "Resolving"
	StateInstalling     SubscriptionState = "Installing"
	StateInstalled      SubscriptionState = "Installed"
	StateUpgradePending SubscriptionState = "UpgradePending"
	StateUpgrading      SubscriptionState = "Upgrading"
	StatePaused         SubscriptionState = "Paused"
	StateFailed         SubscriptionState = "Failed"
)

// SubscriptionStates lists every state, in the order of the enum above
// (TestStatesMatchTheCRD checks that they agree).
var SubscriptionStates = []SubscriptionState{
	StateResolving, StateInstalling, StateInstalled, StateUpgradePending, StateUpgrading, StatePaused, StateFailed,
}

// SubscriptionStatus reports what is installed and what the installer plans.
type SubscriptionStatus struct {
	// state is a one-word summary: Resolving, Installing, Installed,
	// UpgradePending, Upgrading, Paused or Failed.
	// +optional
	State SubscriptionState `json:"state,omitempty"`

	// installedVersion is the version whose objects are applied and healthy.
	// +optional
	InstalledVersion string `json:"installedVersion,omitempty"`

	// installedBundle is the bundle (CSV) name of installedVersion.
	// +optional
	InstalledBundle string `json:"installedBundle,omitempty"`

	// targetVersion is the version the installer is moving to.
	// +optional
	TargetVersion string `json:"targetVersion,omitempty"`

	// latestVersion is the newest version of the channel within versionRange.
	// +optional
	LatestVersion string `json:"latestVersion,omitempty"`

	// catalog is the CatalogSource the installed version came from.
	// +optional
	Catalog string `json:"catalog,omitempty"`

	// catalogDigest is the catalog content the last resolution used.
	// +optional
	CatalogDigest string `json:"catalogDigest,omitempty"`

	// availableUpgrade describes the upgrade a Manual subscription waits for.
	// +optional
	AvailableUpgrade *AvailableUpgrade `json:"availableUpgrade,omitempty"`

	// explanation says, in full, why the installer cannot do what the spec asks.
	// +optional
	Explanation string `json:"explanation,omitempty"`

	// currentRevision is the number of the Revision now applied.
	// +optional
	CurrentRevision int64 `json:"currentRevision,omitempty"`

	// failedUpgrade is the last version that failed its health gate. It is
	// not tried again until a newer version appears, or until the
	// annotation operators.ferry.dev/retry-upgrade names its version.
	// +optional
	FailedUpgrade *FailedUpgrade `json:"failedUpgrade,omitempty"`

	// revisionDigests records the content digest of every Revision the
	// installer wrote for this Subscription, in the one place only the
	// installer writes. A Revision, or a blob, whose content does not match
	// the digest recorded here is refused. Entries are kept for the
	// existing revisions and the newest spec.revisionHistoryLimit revision
	// numbers: at most 256.
	// +listType=map
	// +listMapKey=revision
	// +kubebuilder:validation:MaxItems=256
	// +optional
	RevisionDigests []RevisionDigest `json:"revisionDigests,omitempty"`

	// resolution lists the bundles the last resolution looked at: the one
	// chosen first, then every one passed over with the reason, most
	// preferred first. At most 16 entries; resolutionOmitted counts the rest.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Resolution []ResolutionCandidate `json:"resolution,omitempty"`

	// resolutionOmitted is how many bundles the last resolution looked at
	// that resolution does not list.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ResolutionOmitted int32 `json:"resolutionOmitted,omitempty"`

	// inventory lists every object installed for this Subscription.
	// +listType=atomic
	// +optional
	Inventory []ObjectReference `json:"inventory,omitempty"`

	// conditions: Resolved, Installed, Progressing, UpgradeAvailable,
	// CatalogReachable, RolledBack, CRDUpgradeSafe, Ready, and Deprecated,
	// PackageDeprecated, ChannelDeprecated, BundleDeprecated while the
	// catalog deprecates the package, its channel or the installed bundle.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ResolutionCandidate is one bundle a resolution looked at and what became
// of it.
type ResolutionCandidate struct {
	// catalog is the CatalogSource the bundle is from.
	// +kubebuilder:validation:MaxLength=253
	Catalog string `json:"catalog"`
	// bundle is the bundle (CSV) name.
	// +kubebuilder:validation:MaxLength=253
	Bundle string `json:"bundle"`
	// version is the bundle's version.
	// +kubebuilder:validation:MaxLength=256
	Version string `json:"version"`
	// chosen is true for the bundle the resolution picked.
	// +optional
	Chosen bool `json:"chosen,omitempty"`
	// reason classifies why the bundle was passed over: OutsideRange,
	// NotInChannel, NoUpgradeEdge, Downgrade, NotStartingVersion, a
	// Deprecated bundle, DependencyUnsatisfiable, ConstraintUnsatisfiable,
	// InvalidConstraint, KubeVersionTooOld (its spec.minKubeVersion is
	// above the cluster's Kubernetes version), InvalidMinKubeVersion,
	// Conflict, NotPreferred, Installed. Empty when chosen.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Reason string `json:"reason,omitempty"`
	// message says why for people, naming the constraint, dependency or
	// conflict; for the chosen bundle, how it is reached.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// FailedUpgrade records an upgrade that failed its health gate.
type FailedUpgrade struct {
	// version that failed.
	Version string `json:"version"`
	// bundle (CSV) name that failed.
	Bundle string `json:"bundle"`
	// revision that failed.
	Revision int64 `json:"revision"`
	// contentDigest of the failed revision's objects: the same content is
	// not applied again automatically.
	ContentDigest string `json:"contentDigest"`
	// reason read from the cluster, e.g. "pod x unschedulable: ...".
	Reason string `json:"reason"`
	// time of the failure.
	Time metav1.Time `json:"time"`
}

// RevisionDigest is the trusted record of one Revision's content.
type RevisionDigest struct {
	// revision is the number of the Revision.
	// +kubebuilder:validation:Minimum=1
	Revision int64 `json:"revision"`
	// contentDigest is "sha256:<hex>" of the Revision's objects, as the
	// installer recorded them.
	// +kubebuilder:validation:MaxLength=71
	ContentDigest string `json:"contentDigest"`
}

// AvailableUpgrade is an upgrade waiting for approval.
type AvailableUpgrade struct {
	// version to approve, by setting spec.approvedVersion to it.
	Version string `json:"version"`
	// bundle is the bundle (CSV) name of that version.
	Bundle string `json:"bundle"`
	// edge is how the channel reaches it: replaces, skips or skipRange.
	// +optional
	Edge string `json:"edge,omitempty"`
	// changes summarise what the upgrade would do to the cluster.
	// +listType=atomic
	// +optional
	Changes []string `json:"changes,omitempty"`
	// refusal says why the upgrade would be refused if it were approved
	// now: the permissions the Subscription's ServiceAccount lacks for it.
	// Empty when it may be applied.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Refusal string `json:"refusal,omitempty"`
}

// ObjectReference names an installed object.
type ObjectReference struct {
	// group of the object's kind; empty for the core group.
	// +optional
	Group string `json:"group,omitempty"`
	// version of the object's kind.
	Version string `json:"version"`
	// kind of the object.
	Kind string `json:"kind"`
	// namespace of the object; empty for cluster-scoped objects.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the object.
	Name string `json:"name"`
}

// Subscription installs an operator from a catalog and keeps it at the
// newest version its channel and range allow.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sub;subs
// +kubebuilder:printcolumn:name="Package",type=string,JSONPath=`.spec.package`
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channel`
// +kubebuilder:printcolumn:name="Service Account",type=string,JSONPath=`.spec.serviceAccountName`,priority=1
// +kubebuilder:printcolumn:name="Installed",type=string,JSONPath=`.status.installedVersion`
// +kubebuilder:printcolumn:name="Latest",type=string,JSONPath=`.status.latestVersion`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Subscription struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which operator to install and how to keep it current.
	// +required
	Spec SubscriptionSpec `json:"spec"`

	// status reports what is installed and what the installer plans.
	// +optional
	Status SubscriptionStatus `json:"status,omitempty"`
}

// SubscriptionList is a list of Subscriptions.
//
// +kubebuilder:object:root=true
type SubscriptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Subscription `json:"items"`
}
