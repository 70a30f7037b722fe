// Package tenancy makes every write of a Subscription with the rights of a
// ServiceAccount its namespace chose, so that Kubernetes' own authorization
// bounds what the Subscription can install.
//
// Policy resolves that ServiceAccount for a Subscription: its
// spec.serviceAccountName, else the cluster's default, else none (the
// Subscription is refused with *NoServiceAccountError). Clients hands out a
// client that impersonates the ServiceAccount, made once per account and
// kept in a bounded cache. Checker asks the API server, with one
// SubjectAccessReview per permission, whether the ServiceAccount may make
// every change a plan needs — including what the API server's escalation
// checks demand for Roles, ClusterRoles and their bindings — and returns
// *PermissionsMissingError listing exactly what it lacks, before anything
// is changed.
//
// Reads (ownership, drift, health) stay with the installer's own identity;
// only writes are impersonated.
package tenancy
