package v1alpha1

// Condition types.
const (
	// TypeResolved: the resolver found what to install (True) or explained
	// why it cannot (False).
	TypeResolved = "Resolved"
	// TypeInstalled: the installed version's objects are applied and healthy.
	TypeInstalled = "Installed"
	// TypeProgressing: the installer is applying a version or waiting for it
	// to become healthy.
	TypeProgressing = "Progressing"
	// TypeUpgradeAvailable: a newer version is reachable (for Manual
	// subscriptions, waiting for approval).
	TypeUpgradeAvailable = "UpgradeAvailable"
	// TypeCatalogReachable: the catalog answered when last asked.
	TypeCatalogReachable = "CatalogReachable"
	// TypeConnected (CatalogSource): the installer follows the catalog.
	TypeConnected = "Connected"
	// TypeRolledBack: the last upgrade failed its health gate and the
	// previous healthy revision was restored (True), with the cause.
	TypeRolledBack = "RolledBack"
	// TypeCRDUpgradeSafe: the CRD changes of the target version are safe for
	// the data in the cluster (False blocks the upgrade under Strict).
	TypeCRDUpgradeSafe = "CRDUpgradeSafe"
	// TypeReady (Subscription): the operator is installed and healthy and
	// nothing is in progress or failed (kubectl wait --for=condition=Ready);
	// when False, its reason is the one of the condition that says why.
	TypeReady = "Ready"
	// TypeDeprecated (Subscription): the catalog deprecates the package,
	// the channel followed or the installed bundle (True, the messages of
	// each); absent when it deprecates none of them.
	TypeDeprecated = "Deprecated"
	// TypePackageDeprecated (Subscription): the catalog deprecates the
	// package (True, with the catalog's message); absent when not.
	TypePackageDeprecated = "PackageDeprecated"
	// TypeChannelDeprecated (Subscription): the catalog deprecates the
	// channel the Subscription follows (True, with the catalog's message);
	// absent when not.
	TypeChannelDeprecated = "ChannelDeprecated"
	// TypeBundleDeprecated (Subscription): the catalog deprecates the
	// installed bundle (True, with the catalog's message); absent when not.
	TypeBundleDeprecated = "BundleDeprecated"
)

// Condition reasons.
const (
	ReasonResolved           = "Resolved"
	ReasonUnsatisfiable      = "Unsatisfiable"
	ReasonCatalogUnavailable = "CatalogUnavailable"
	ReasonInstalled          = "Installed"
	ReasonInstalling         = "Installing"
	ReasonUpgrading          = "Upgrading"
	ReasonWaitingForHealthy  = "WaitingForHealthy"
	ReasonInvalidBundle      = "InvalidBundle"
	ReasonUnsupportedMode    = "UnsupportedInstallMode"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonUpgradePending     = "UpgradePendingApproval"
	ReasonNoUpgrade          = "UpToDate"
	ReasonPaused             = "Paused"
	ReasonConnected          = "Connected"
	ReasonUnreachable        = "Unreachable"
	ReasonDependencyNotReady = "DependencyNotReady"
	ReasonDeleting           = "Deleting"
	ReasonNotInstalled       = "NotInstalled"
	ReasonHealthGateFailed   = "HealthGateFailed"
	ReasonRollbackRequested  = "RollbackRequested"
	ReasonPinned             = "Pinned"
	ReasonUpgradeFailed      = "UpgradeFailed"
	ReasonCRDUnsafe          = "CRDChangeUnsafe"
	ReasonCRDSafe            = "CRDChangeSafe"
	ReasonDowngrading        = "Downgrading"
	// ReasonTLSConfigInvalid (CatalogSource): the TLS settings cannot be
	// used: a Secret or ConfigMap is missing, a key is absent, a certificate
	// or key does not parse or has expired.
	ReasonTLSConfigInvalid = "TLSConfigInvalid"
	// ReasonTLSHandshakeFailed (CatalogSource): catalogd answered, but the
	// TLS handshake failed (untrusted or expired certificate, name mismatch,
	// a plaintext server).
	ReasonTLSHandshakeFailed = "TLSHandshakeFailed"
	// ReasonOwnershipConflict: an object the operator installs already
	// exists and is not Ferry's for this Subscription; nothing was applied.
	ReasonOwnershipConflict = "OwnershipConflict"
	// ReasonRevisionUntrusted: a Revision or its blobs were not written by
	// the installer for this Subscription, or their content changed since.
	ReasonRevisionUntrusted = "RevisionUntrusted"
	// ReasonContentMismatch: a catalog served bundle content that does not
	// match what it announced.
	ReasonContentMismatch = "ContentMismatch"
	// ReasonNoServiceAccount: the Subscription names no ServiceAccount and
	// the installer has no default one; nothing was applied.
	ReasonNoServiceAccount = "NoServiceAccount"
	// ReasonPermissionsMissing: the Subscription's ServiceAccount may not
	// make every change the install, upgrade or uninstall needs; the
	// message lists what is missing and nothing was changed.
	ReasonPermissionsMissing = "PermissionsMissing"
	// ReasonWaitingForCluster: the revision is past its health timeout but
	// not rolled back: its pods are unready because of the cluster (a node
	// NotReady or unreachable, or the previous version just as unready).
	ReasonWaitingForCluster = "WaitingForCluster"
	// ReasonCannotAct: the installer may not act for the Subscription now
	// (its identity or permissions cannot be used); nothing was changed.
	ReasonCannotAct = "CannotAct"
	// ReasonRetrying: the action failed before it could say more (an API
	// error, a conflict); the message has the error and it is retried.
	ReasonRetrying = "Retrying"
	// ReasonDeprecated: the catalog declares the package, channel or bundle
	// deprecated (olm.deprecations).
	ReasonDeprecated = "Deprecated"
)

// Event reasons of Subscriptions, besides the condition reasons above.
const (
	// EventReasonInstalled: a version was installed and passed its health gate.
	EventReasonInstalled = "Installed"
	// EventReasonUpgraded: an upgrade passed its health gate.
	EventReasonUpgraded = "Upgraded"
	// EventReasonDowngraded: a downgrade passed its health gate.
	EventReasonDowngraded = "Downgraded"
	// EventReasonRolledBack: a revision missed its health gate and the last
	// healthy one was restored (Warning), or a restored revision passed its
	// health gate (Normal).
	EventReasonRolledBack = "RolledBack"
	// EventReasonDependencySubscribed: a child Subscription was created for a
	// dependency.
	EventReasonDependencySubscribed = "DependencySubscribed"
	// EventReasonDependencyUpdated: a child Subscription was changed to follow
	// its parent's requirement (version range, channel, required-by).
	EventReasonDependencyUpdated = "DependencyUpdated"
	// EventReasonDependencyReleased: a child Subscription its parent no longer
	// needs lost the parent's label; it keeps running, the user's to keep or
	// delete.
	EventReasonDependencyReleased = "DependencyReleased"
)

// ConditionTypes lists every condition type, for registration tests and tools.
var ConditionTypes = []string{TypeResolved, TypeInstalled, TypeProgressing, TypeUpgradeAvailable, TypeCatalogReachable, TypeConnected, TypeRolledBack, TypeCRDUpgradeSafe, TypeReady,
	TypeDeprecated, TypePackageDeprecated, TypeChannelDeprecated, TypeBundleDeprecated}

// ConditionReasons lists every condition reason.
var ConditionReasons = []string{
	ReasonResolved, ReasonUnsatisfiable, ReasonCatalogUnavailable, ReasonInstalled, ReasonInstalling,
	ReasonUpgrading, ReasonWaitingForHealthy, ReasonInvalidBundle, ReasonUnsupportedMode, ReasonApplyFailed,
	ReasonUpgradePending, ReasonNoUpgrade, ReasonPaused, ReasonConnected, ReasonUnreachable,
	ReasonDependencyNotReady, ReasonDeleting, ReasonNotInstalled, ReasonHealthGateFailed, ReasonRollbackRequested,
	ReasonPinned, ReasonUpgradeFailed, ReasonCRDUnsafe, ReasonCRDSafe, ReasonDowngrading,
	ReasonTLSConfigInvalid, ReasonTLSHandshakeFailed,
	ReasonOwnershipConflict, ReasonRevisionUntrusted, ReasonContentMismatch,
	ReasonNoServiceAccount, ReasonPermissionsMissing,
	ReasonWaitingForCluster, ReasonCannotAct, ReasonDeprecated, ReasonRetrying,
}
