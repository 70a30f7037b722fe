// Package kinds is the one list of the kinds of object Ferry installs: for
// each its group, kind, resource, scope, the version Ferry watches it at,
// its place in the apply order, whether a bundle may ship it, whether its
// API is served only when an add-on is installed, and the verbs the
// installer needs on it.
//
// Everything else derives from it: which manifests install.Render accepts,
// the order in which objects are applied and removed, the installer's cache
// configuration and the watches that correct drift. The installer's RBAC
// markers sit next to the list (kinds.go); config/rbac/role.yaml is
// generated from them, and a test fails when the generated ClusterRole does
// not grant exactly the verbs the list needs.
package kinds
