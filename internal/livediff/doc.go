// Package livediff compares what an install would apply with the live
// objects of a cluster: it applies every rendered object with a server-side
// apply dry run (field manager "ferry", force), strips what every write
// changes (managedFields, resourceVersion, generation, uid,
// creationTimestamp) and reports per object whether it would be created,
// changed, left unchanged, replaced, deleted or kept, with the unified diff
// of the live object and the dry run's result, and what the operator's RBAC
// gains and loses.
//
// Nothing in the cluster is changed: every write is a dry run. The client
// given decides with whose rights the objects are read and dry-run applied.
package livediff
