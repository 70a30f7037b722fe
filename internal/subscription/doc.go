// Package subscription is the Subscription controller: it turns a
// Subscription into a running operator and keeps it at the version its
// channel, range and approval allow.
//
// # Decide, then act
//
// One reconcile has four phases:
//
//	observe (observe.go)   → facts     the only phase that reads the cluster and the catalogs
//	decide  (decide.go)    → decision  a pure function: exactly one action, with its inputs
//	act     (action_*.go)  → result    the one action, the only phase that writes objects
//	summarize (summarize.go)           conditions and status.state, once; status written once
//
// The facts are the Subscription, its trusted revisions and the current one,
// the health of what is applied (with whom to blame when it is not
// healthy), spec.rollbackTo's revision, the catalog snapshots, the
// resolver's answer, the dependency Subscriptions, and the candidate: the
// version the spec and the catalogs ask for, rendered, with its content
// digest, whether that content failed its health gate before, and the CRD
// safety verdict.
//
// # Actions
//
// decide considers, in this order:
//
//	condition                                              action               state
//	being deleted                                          Finalize             (removed)
//	the installer may not act (applierFor failed)          CannotAct            Failed, or as installed
//	spec.paused                                            Hold                 Paused
//	spec.rollbackTo names a missing or untrusted revision  Refuse               as installed
//	no catalog content, nothing installed                  WaitForCatalog       Resolving
//	unsatisfiable, nothing installed                       MarkFailed           Failed
//	a dependency not installed (within its required range)
//	  yet, unless an upgrade waits for approval            WaitForDependencies  Installing, or as installed
//	invalid bundle, unsupported mode, content mismatch     MarkFailed           Failed, or as installed
//	CRD change blocked, nothing else installed             MarkFailed           Failed
//
// Otherwise the content to run is chosen: the pinned revision
// (spec.rollbackTo); or the current revision when the catalog or the
// resolution is missing, a Manual upgrade waits for approval, the
// candidate failed its health gate before (without the retry annotation)
// or its CRD change is blocked; or else the candidate (an install, upgrade,
// reconfiguration or, with allowDowngrade, downgrade). When the current
// revision was being rolled back (the installer stopped in the middle), the
// last healthy one is chosen instead; a revision that failed its gate with
// nothing to return to, or under rollbackPolicy Never, stays. Then:
//
//	content other than what is applied                     Install              Installing / Upgrading
//	applied, healthy                                       InSync               Installed
//	applied, healthy, a child no longer required           ReleaseDependencies  Installed
//	applied, healthy, an upgrade waiting for approval      HoldForApproval      UpgradePending
//	applied, unhealthy, within the health timeout          WaitForHealthy       Installing / Upgrading / Installed
//	past the timeout, the cluster to blame                 WaitForCluster       Upgrading / Installed
//	past the timeout, the revision to blame, a healthy
//	  revision to return to                                RollBack             Upgrading
//	past the timeout, nothing to return to (an install,
//	  a rollback, rollbackPolicy Never)                    MarkGateFailed       Failed
//	applied revision failed its gate, still unhealthy      WaitForHealthy       Failed
//
// Install records a new revision (after the ownership preflight) and
// applies it; its health is judged by the next reconciles, which read the
// cluster again on every requeue until the health timeout. WaitForHealthy
// applies the revision again only when something may have drifted: not
// applied by this installer yet, a new generation, a watch event of an
// installed object other than a status change, or a resync period since
// the last apply (appliedRecords); a plain requeue only reads health. A revision that
// cannot even be applied by the end of its timeout fails its gate in the
// same way, healthy or not: the apply error is the one fact only an action
// learns, so the action that meets it changes nothing, the fact is added
// (facts.applyFailed) and decide picks again, RollBack or MarkGateFailed
// (Reconciler.run; at most two actions in a reconcile). Health not judged
// (install.Health.Blame empty) counts as the revision's fault.
//
// # Status
//
// Conditions are set only through setCondition, which records
// observedGeneration; status.state is assigned only in summarize (stateOf).
// Status is written once per reconcile, and only when it changed, except
// that a new revision's digest and the revision being applied are written
// before the objects are, so a crash loses neither.
//
// Dependencies chosen by the resolver are installed through child
// Subscriptions in the same namespace, labelled with their parent, and the
// parent waits until they are Installed within the range its target
// requires. A child follows its parent's requirement (version range,
// channel, required-by) and, once the parent runs a version that no longer
// needs it, is released (label removed, annotated), not deleted. A paused
// parent, or an upgrade waiting for approval, creates and changes no child.
// Children are written as the parent's ServiceAccount. A rollback of the
// parent does not roll its children back. A Manual subscription installs its
// first version, then waits for spec.approvedVersion to name an upgrade;
// status.availableUpgrade says what would change. Deleting a Subscription
// removes what it installed, but keeps CRDs (and so every custom resource)
// unless spec.crdDeletionPolicy is Delete.
//
// A reconcile cut short by shutdown (its context canceled) ends quietly:
// no error is returned, so nothing is logged as a reconciler error, and no
// condition is written; the next installer reconciles every Subscription.
//
// Every use of an install.Applier for a Subscription goes through
// applierFor; an error from it (a *CannotActError names the condition
// reason) is reported as the CannotAct action, never a crash loop.
package subscription
