// Package install turns one registry+v1 bundle version into the exact set of
// Kubernetes objects it installs, applies them with server-side apply, prunes
// what a new version no longer ships, reports whether the install is healthy
// and removes it again.
//
// The Subscription controller drives it in four steps:
//
//	r, err := install.Render(install.Input{...})       // pure, no API calls
//	res, err := applier.Apply(ctx, r, status.Inventory) // store res.Inventory
//	h, err := applier.Health(ctx, res.Inventory)        // h.Message explains a failure
//	left, err := applier.Uninstall(ctx, inv, policy)    // requeue until left.Remaining == 0
//
// Render follows what OLM does with a ClusterServiceVersion whose install
// strategy is "deployment": owned CRDs are applied as shipped, one
// ServiceAccount is created per service account the CSV names, permissions
// become a Role and RoleBinding (OwnNamespace) or a ClusterRole and
// ClusterRoleBinding (AllNamespaces), clusterPermissions become a ClusterRole
// and ClusterRoleBinding, and each deployment becomes an apps/v1 Deployment
// whose pod template carries the olm.targetNamespaces annotation and the
// Subscription's config. Other manifests of the kinds OLM installs are applied
// as shipped, namespaced ones in the install namespace. The CSV's
// webhookdefinitions become a Service per serving Deployment, a Secret for
// its certificate, webhook configurations and CRD conversion webhooks
// (webhooks.go); the certificate is generated when the Secret is applied,
// never rendered (certs.go), and webhooks are registered only once their
// Deployment is available (apply_webhooks.go). See docs/webhooks.md.
//
// Every object carries the labels LabelManagedBy, LabelOwnerNamespace,
// LabelOwnerName and LabelPackage. Apply, prune and Uninstall only ever delete
// objects whose labels name the same owner, and never delete a CRD unless
// Uninstall is asked to with CRDDeletionDelete.
package install
