// Package resolver decides what to install or upgrade for a set of
// subscriptions, or explains precisely why it cannot. It is a pure library:
// catalog snapshots, installed operators and subscriptions in, one
// [Decision] per subscription out ([Resolve]). It talks to no cluster.
//
// # Policy
//
//   - Fresh install: the highest version in the channel (the package's default
//     channel when none is named) within the subscription's range, or exactly
//     the starting version when one is given.
//   - Upgrade from installed X: the channel entries with an edge from X
//     (replaces X, skips X, or a skipRange containing X's version), highest
//     semver first, within the range. Edges name the installed bundle, so an
//     installed version the catalog no longer has still upgrades along
//     entries that replace or skip its name, or whose skipRange contains it.
//     Entries below X are rejected as downgrades (rollback is not resolved
//     here), unless X is outside the range and the subscription allows
//     downgrades: then the entries below X within the range are candidates
//     too ([StatusDowngrade], edge [EdgeDowngrade]), after any upgrade
//     within the range, highest first.
//     Staying on X is always the last candidate, so an upgrade that cannot be
//     made leaves the operator running and says why ([StatusUpToDate] with
//     rejections), never [StatusUnsatisfiable]. An installed version outside the
//     range stays, with a warning. The starting version only applies to fresh
//     installs.
//   - Deprecated bundles come after every non-deprecated candidate; when only
//     deprecated ones fit, the best is chosen and the Decision carries a warning.
//     Deprecated packages and channels produce warnings, never refusals.
//   - Manual approval: the approved version, when it is a candidate
//     (reachable from the installed bundle, in the channel and the range),
//     is preferred over every other; NeedsApproval is set when an upgrade
//     target is not the approved version, and ApprovedUnreachable says why
//     the approved version is not the target. A first install and a
//     downgrade need no approval.
//   - Kubernetes version: with Request.KubeVersion, a candidate whose
//     minimum Kubernetes version (its ClusterServiceVersion's
//     spec.minKubeVersion, as Request.MinKubeVersion knows it) is above the
//     cluster's is passed over up front ([ReasonKubeVersion], "requires
//     Kubernetes ≥ 1.30.0 (spec.minKubeVersion), the cluster is 1.29.4"), so
//     that an older version that fits is chosen; a minimum that is not a
//     version passes over its bundle ([ReasonInvalidMinKubeVersion], naming
//     the CSV and the value). When no candidate is left for that,
//     [CodeKubeVersion] names them. The installed bundle stays, whatever it
//     requires. Dependencies are checked by their own subscriptions.
//
// # Dependencies and constraints
//
// olm.package.required (a package within a blang range) and olm.gvk.required
// (some bundle providing the API) are followed transitively. A dependency is
// installed into the requiring subscription's namespace. Constraints: one
// bundle per package per namespace; one package per API in the whole
// cluster (CRDs are cluster-wide), counting installed operators in every
// namespace; the same package in two namespaces may share its APIs.
// Installed operators without a subscription in the request stay exactly as
// they are: they satisfy requirements when in range and otherwise block other
// versions of their package in their namespace. Installed bundles are taken as
// they are; their own requirements are not re-checked.
//
// Constraints a bundle declares are requirements too, met by some chosen
// bundle that passes them, placed in the same namespace as the bundle that
// declares them. olm.constraint with gvk or package is exactly
// olm.gvk.required or olm.package.required. With cel, all, any or not it is a
// test of one candidate bundle: cel is a CEL rule (cel-go) over the variable
// properties, the candidate's properties as {type, value} with the value as
// parsed JSON, with the function semver_compare(a, b) (-1, 0 or 1, versions
// parsed leniently as blang's ParseTolerant does); the rule must be boolean,
// and an evaluation error, the cost limit [MaxCELCost] included, counts as
// false; one resolution spends at most [MaxCELTotalCost] on CEL. all passes a bundle that passes every child, any one that passes
// some child, not one that passes none of them (so a not alone is met by
// any such bundle, the declaring one included: it narrows only inside all). olm.label.required
// {"label": x} is met by a bundle with the property olm.label {"label": x}.
// Rules are compiled once per resolution and evaluated once per (rule,
// bundle). At most [MaxConstraintOptions] bundles, the most preferred, may
// meet one such constraint. A constraint that cannot be evaluated (a rule
// that does not compile or is not boolean, an unknown field, more than
// [MaxConstraintBytes], nesting deeper than [MaxConstraintDepth]) passes over
// the bundle that declares it with [ReasonInvalidConstraint] and a message
// naming the property and why; other bundles and the catalog are unaffected.
// A constraint that nothing meets gives [ReasonConstraint], and the
// explanation carries the bundle's own failureMessage (for every kind of
// constraint, where operator-framework shows it for cel only).
//
// Options are preferred in this order: installed, not deprecated, in the
// package's default channel (a dependency comes from the channel its
// publisher recommends, not from a preview channel), from the same catalog as the bundle that requires them, higher catalog priority,
// catalog name, higher version, package name.
//
// # Search
//
// Each choice (a subscription's target, then each requirement of what was
// chosen, breadth first) takes the most preferred option that can still lead
// to a full solution. A fast greedy pass checks options only against the
// choices made so far; when it completes, its result is exactly the one the
// complete search would give. When it reaches a dead end the component is
// encoded as pseudo-boolean constraints and every option is first proven
// extensible with github.com/crillab/gophersat, so a solution is found
// whenever one exists. Bundles whose requirements can never be met (no
// option at all, transitively) are pruned before either pass.
//
// # Isolation
//
// Subscriptions are grouped into components linked by anything they might
// share: a package in a namespace, an API, or a dependency between
// candidates. Each component is solved on its own. Within a component, a
// subscription that cannot be satisfied even alone fails alone; subscriptions
// that can each be satisfied but not together fail together, as the smallest
// such set found by deletion, and their explanation names the link (the
// package and namespace, or the API). The others proceed.
//
// # Explanations
//
// A failure is explained by a minimal set of facts that proves it, found with
// QuickXplain over groups of constraints, each group being one human fact
// (a requirement and what meets it, "only one version of P in namespace N",
// "only one package may provide API G", "X is installed"). Facts are ordered
// from the subscription outwards and shallow facts are preferred, so the
// chain is short. Requirements that nothing can meet name the versions the
// catalogs do have. Every bundle of the package that was not chosen carries a
// [Reason] and a message.
//
// # Candidates, for a status
//
// [Decision].Candidates is a bounded, structured view of what the resolver
// looked at, meant to be shown as is (e.g. a Subscription's
// status.resolution): the target first with Chosen set and the edge that
// reaches it, then every candidate passed over, most preferred first, with
// its [Reason] ([ReasonConstraint], [ReasonInvalidConstraint],
// [ReasonDependency], [ReasonConflict], ...) and a message naming the
// constraint, dependency or conflict, then the bundles filtered out up front
// (not in the channel, outside the range, no upgrade edge). At most
// [MaxCandidateReasons] entries, each message at most
// [MaxCandidateMessageBytes]; CandidatesOmitted counts the rest.
// Decision.Rejected stays the complete list.
//
// Results are deterministic: catalogs, options and subscriptions are always
// visited in a fixed order, and the solver is only asked yes-or-no questions.
package resolver
