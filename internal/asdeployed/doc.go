// Package asdeployed runs Ferry on a cluster the way its manifests deploy
// it, with the installer and catalogd as local processes instead of pods.
//
// The input is rendered manifests — multi-document YAML as
// `kubectl kustomize config/default` or `helm template` print them — never
// paths into config/, so that every way of deploying Ferry is exercised by
// the same code:
//
//	m, err := asdeployed.Parse(rendered)
//	err = asdeployed.Apply(ctx, admin, m.Objects, asdeployed.Skip(deployments...))
//	cfg, err := asdeployed.ServiceAccountConfig(ctx, admin, "ferry-system", "ferry-installer", time.Hour)
//	err = asdeployed.WriteKubeconfig(path, cfg)
//	cmd, err := m.Command("ferry-system", "ferry-installer",
//		asdeployed.WithFlag("--metrics-bind-address", "127.0.0.1:18080"))
//	src, err := asdeployed.ClusterSource(admin)
//	err = cmd.MountVolumes(ctx, src, dir)
//	// run the installer binary with cmd.Args and cmd.Env, KUBECONFIG=path
//
// Apply server-side applies Namespaces and CRDs first (waiting until the
// CRDs are Established), then everything else in document order.
// ServiceAccountConfig mints a token for a ServiceAccount with the
// TokenRequest API, so a process holds exactly the permissions RBAC gives
// that account — never the caller's. Command returns a Deployment
// container's arguments with $(VAR) references expanded from the
// container's env as the kubelet would (literal values and the pod's
// namespace and name from the downward API), and the environment the
// process gets. Rewriting a flag is explicit (WithFlag), limited to flags
// the Deployment already passes, and reported in Command.Rewritten.
//
// MountVolumes makes the container's volumeMounts local folders under a
// deploy folder: Secret and ConfigMap volumes are read with the credentials
// of the one deploying (the process's own identity may have no API access)
// and written with their items and modes; emptyDir and
// persistentVolumeClaim volumes are folders, a claim's kept by claim name
// across runs. Every argument naming a mounted path is rewritten to the
// local one and reported in Command.Rewritten. Other volume types are an
// error naming the volume.
package asdeployed
