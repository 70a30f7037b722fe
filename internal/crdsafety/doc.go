// Package crdsafety decides whether a CustomResourceDefinition may be
// replaced by a new one without breaking the data already in the cluster or
// the clients that use it. The installer calls it before it creates or
// updates a CRD of a bundle.
//
// # Checks
//
// Checker.Check(ctx, live, new, policy) runs three checks; Diff(live, new)
// runs the static ones (a and c) without a cluster.
//
// (a) Stored versions. Every version in the live CRD's
// status.storedVersions must still be present in the new spec.versions
// (KindStoredVersionRemoved). Presence is what is required: kube-apiserver
// decodes stored objects through a version even when it is not served. A
// stored version that stays but stops being served is reported by (c) as
// KindServedVersionUnserved, which blocks as well.
//
// (b) Existing custom resources. Every custom resource of the CRD is listed
// (all namespaces, PageSize objects per request, following the continue
// token) and validated against the new schema of every version the new CRD
// serves or stores, the way kube-apiserver validates a write through that
// version: unknown fields are pruned, defaults applied, then the OpenAPI
// schema is checked with the apiextensions validation code (types, enum,
// required, minimum/maximum and their exclusive flags, length, items and
// properties bounds, multipleOf, pattern, format, nullable,
// additionalProperties), x-kubernetes-list-type set/map uniqueness, and
// x-kubernetes-validations CEL rules (without oldSelf transition rules,
// since there is no old object). Each error is one finding naming the CRD,
// the object (namespace/name), the version, the field and the API server's
// message (KindInvalidObject). When the object fails the old schema of the
// same version on the same field, the finding is KindAlreadyInvalidObject
// and does not block: the object was broken before the change.
//
// Without conversion (strategy None) the objects are listed once and checked
// against every version, since only apiVersion differs. With a conversion
// webhook they are listed once per version served by both the live and the
// new CRD, and the API server converts them; versions the live CRD does not
// serve yet cannot be converted before the change and are not checked.
//
// (c) Static breaking changes, per version present in both CRDs: property
// removed (or a map's additionalProperties, or x-kubernetes-preserve-unknown-
// fields turned off), type changed to one that does not accept every old
// value (integer to number and integer/string to int-or-string widen),
// nullable removed, format added or changed, new required field, enum
// narrowed or added, minimum raised, maximum lowered, exclusive flag added,
// minLength/minItems/minProperties raised or added, maxLength/maxItems/
// maxProperties lowered or added, multipleOf added or changed to a value the
// old one is not a multiple of, pattern added or changed (patterns are not
// compared semantically), list type made stricter or list-map keys changed,
// CEL rule added, allOf/anyOf/oneOf/not changed (conservatively). At CRD
// level: scope changed, a served version removed or no longer served.
// Ratcheting: only changes that make the schema stricter are reported; a
// constraint the old schema already had, a field that was already required
// (or that is newly required but has a default the API server applies),
// a new optional field, a widened enum, looser bounds, a new version and
// description, default or printer-column changes produce nothing.
//
// # Policy
//
// PolicyStrict (the default) blocks when any finding is blocking;
// PolicyWarn returns the findings and never blocks; PolicyNone skips every
// check and makes no request. A live CRD of nil (not installed yet) gives
// no findings.
//
// # Not covered
//
//   - metadata of custom resources (name format, embedded resources'
//     ObjectMeta) is not validated, nor are admission webhooks or
//     ValidatingAdmissionPolicies run.
//   - CEL transition rules (oldSelf) and CEL cost limits are not enforced
//     beyond the API server's per-call and per-object budgets.
//   - Statically, changes inside allOf/anyOf/oneOf/not are reported whenever
//     the combinator differs, and patterns whenever the text differs; both
//     can be false positives. Subresources (status, scale), names, printer
//     columns and the conversion webhook's behaviour are not compared.
//   - Objects created or changed between the check and the update of the CRD
//     are not seen.
//   - kube-apiserver (1.30+, CRDValidationRatcheting) lets an update keep an
//     invalid field unchanged, so an object reported by (b) can often still
//     be updated; it can no longer be created as it is (restore from backup,
//     GitOps re-apply) nor have that field changed to another invalid value.
//     Check reports it as blocking all the same.
//   - With a conversion webhook, versions the live CRD does not serve are not
//     checked against existing objects (see (b)).
package crdsafety
