// Package cli is kubectl-ferry, the kubectl plugin for Day 2 work on
// Ferry's Subscriptions: list, status, history, diff, approve, rollback, unpin,
// pause, resume, and catalog search and show.
//
// Every command reads the cluster as the user's kubeconfig allows (the
// kubectl flags: --kubeconfig, --context, -n, ...); nothing runs with the
// installer's permissions. Mutating commands change only the spec fields
// a person would edit by hand (spec.approvedVersion, spec.rollbackTo,
// spec.paused), with optimistic concurrency, and with --wait follow the
// Subscription's status until the installer has observed the new
// generation and the outcome is known.
//
// diff renders the target version as the installer does (install.Render
// on the bundle's manifests fetched from the CatalogSource's catalogd,
// verified against the manifests digest the catalog announces) and asks
// the API server for a server-side apply dry run with the installer's
// field manager, so what it shows is what the installer's apply would do.
package cli
