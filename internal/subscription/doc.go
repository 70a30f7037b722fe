// Package subscription is the Subscription controller: it turns a
// Subscription into a running operator and keeps it at the version its
// channel, range and approval allow.
//
// One reconcile is a short list of named steps over a small state:
//
//	finalize (when deleting) → catalogs → resolve → dependencies → approve →
//	apply → health → status
//
// Status is written once per reconcile, and only when it changed; every
// condition is set through one helper that records observedGeneration.
//
// Dependencies chosen by the resolver are installed through child
// Subscriptions in the same namespace, labelled with their parent, and the
// parent waits until they are Installed. A Manual subscription installs its
// first version, then waits for spec.approvedVersion to name an upgrade;
// status.availableUpgrade says what would change. Deleting a Subscription
// removes what it installed, but keeps CRDs (and so every custom resource)
// unless spec.crdDeletionPolicy is Delete.
package subscription
