// Package config holds Ferry's Kustomize manifests; this test guards them.
//
// It renders config/default, config/samples and config/publishing with
// `kubectl kustomize` and checks that every object parses, that the
// installer's ClusterRole is the one generated from the code's RBAC markers,
// that both Deployments are hardened and probed, and that the CRDs are the
// generated ones from config/crd/bases. See docs/deploy.md.
package config

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/kinds"

	"github.com/ferrydev/ferry/internal/manifesttest"
)

const namespace = "ferry-system"

// object is one rendered manifest.
type object = manifesttest.Object

// render runs `kubectl kustomize dir` and splits its output into objects.
func render(t *testing.T, dir string) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl not found in PATH: it renders the Kustomize manifests (kubectl kustomize); install kubectl (Debian package kubectl) to run this test")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return split(t, dir, stdout.Bytes())
}

func split(t *testing.T, what string, data []byte) []object {
	t.Helper()
	return manifesttest.Split(t, what, data)
}

func decodeStrict(t *testing.T, o object, out any) {
	t.Helper()
	manifesttest.DecodeStrict(t, o, out)
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	return manifesttest.Find(t, objs, kind, name)
}

// typed maps every kind config/ renders to its Go type.
func typed(kind string) any {
	switch kind {
	case "Namespace":
		return &corev1.Namespace{}
	case "ServiceAccount":
		return &corev1.ServiceAccount{}
	case "Service":
		return &corev1.Service{}
	case "PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "Deployment":
		return &appsv1.Deployment{}
	case "ClusterRole":
		return &rbacv1.ClusterRole{}
	case "ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "Role":
		return &rbacv1.Role{}
	case "RoleBinding":
		return &rbacv1.RoleBinding{}
	case "CustomResourceDefinition":
		return &apiextensionsv1.CustomResourceDefinition{}
	case "ValidatingAdmissionPolicy":
		return &admissionregistrationv1.ValidatingAdmissionPolicy{}
	case "ValidatingAdmissionPolicyBinding":
		return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	case "CatalogSource":
		return &v1alpha1.CatalogSource{}
	case "Subscription":
		return &v1alpha1.Subscription{}
	}
	return nil
}

func TestEveryObjectParses(t *testing.T) {
	for _, dir := range []string{"default", "samples", "publishing"} {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			if len(objs) == 0 {
				t.Fatal("nothing rendered")
			}
			for _, o := range objs {
				out := typed(o.Kind)
				if out == nil {
					t.Errorf("%s: kind not expected in config/%s (add it to typed() if it belongs there)", o, dir)
					continue
				}
				decodeStrict(t, o, out)
				if o.Metadata.Name == "" {
					t.Errorf("%s: no name", o)
				}
			}
		})
	}
}

func TestNamespacedObjectsInFerrySystem(t *testing.T) {
	for _, o := range render(t, "default") {
		switch o.Kind {
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			if o.Metadata.Namespace != "" {
				t.Errorf("%s: cluster-scoped object with a namespace", o)
			}
		default:
			if o.Metadata.Namespace != namespace {
				t.Errorf("%s: want namespace %s", o, namespace)
			}
		}
	}
}

// permission is one verb on one resource.
type permission struct{ group, resource, verb string }

func (p permission) String() string {
	g := p.group
	if g == "" {
		g = "core"
	}
	return p.verb + " " + g + "/" + p.resource
}

// covers reports whether rules grant p, wildcards included.
func covers(rules []rbacv1.PolicyRule, p permission) bool {
	match := func(list []string, s string) bool {
		return slices.Contains(list, s) || slices.Contains(list, rbacv1.ResourceAll)
	}
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			continue
		}
		if match(r.APIGroups, p.group) && match(r.Resources, p.resource) && match(r.Verbs, p.verb) {
			return true
		}
	}
	return false
}

// generatedRole reads config/rbac/role.yaml, which make generate writes
// from the +kubebuilder:rbac markers in the installer's code.
func generatedRole(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	path := filepath.Join("rbac", "role.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make generate)", err)
	}
	objs := split(t, path, data)
	if len(objs) != 1 || objs[0].Kind != "ClusterRole" {
		t.Fatalf("%s: want exactly one ClusterRole document, got %v", path, objs)
	}
	var cr rbacv1.ClusterRole
	decodeStrict(t, objs[0], &cr)
	return cr
}

func installerClusterRole(t *testing.T, objs []object) rbacv1.ClusterRole {
	t.Helper()
	var cr rbacv1.ClusterRole
	decodeStrict(t, find(t, objs, "ClusterRole", "ferry-installer"), &cr)
	return cr
}

// TestInstallerClusterRoleIsTheGeneratedOne: config/default carries the
// generated ClusterRole unchanged (but for labels), named as the binding
// expects. The chart takes its rules from the same file.
func TestInstallerClusterRoleIsTheGeneratedOne(t *testing.T) {
	want := generatedRole(t)
	if want.Name != "ferry-installer" {
		t.Errorf("config/rbac/role.yaml names the ClusterRole %q, want ferry-installer (rbac:roleName in hack/gen-k8s.sh)", want.Name)
	}
	got := installerClusterRole(t, render(t, "default"))
	if !reflect.DeepEqual(got.Rules, want.Rules) {
		t.Errorf("ClusterRole ferry-installer in config/default differs from config/rbac/role.yaml:\n got %+v\nwant %+v", got.Rules, want.Rules)
	}
	if got.AggregationRule != nil {
		t.Error("ClusterRole ferry-installer has an aggregation rule")
	}
}

// TestInstallerClusterRoleCoversTheCache: every kind the installer's caches
// watch (the kinds it installs, internal/kinds, and its own types) needs
// get, list and watch, or the cache never syncs and the installer never
// starts. The markers next to the code grant them; this catches a kind
// added to a watch without one. internal/kinds checks the verbs on
// installed kinds exactly.
func TestInstallerClusterRoleCoversTheCache(t *testing.T) {
	cr := generatedRole(t)
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var watched []permission
	for _, k := range kinds.All() {
		watched = append(watched, permission{group: k.Group, resource: k.Resource})
	}
	for _, obj := range []runtime.Object{&v1alpha1.Subscription{}, &v1alpha1.CatalogSource{}} {
		gvks, _, err := scheme.ObjectKinds(obj)
		if err != nil {
			t.Fatal(err)
		}
		plural, _ := meta.UnsafeGuessKindToResource(gvks[0])
		watched = append(watched, permission{group: gvks[0].Group, resource: plural.Resource})
	}
	for _, w := range watched {
		for _, verb := range []string{"get", "list", "watch"} {
			if p := (permission{w.group, w.resource, verb}); !covers(cr.Rules, p) {
				t.Errorf("ClusterRole ferry-installer does not grant %s, which the installer's caches need", p)
			}
		}
	}
}

// TestInstallerClusterRoleWildcards: the one wildcard is deliberate, list
// on every resource for the CRD upgrade check (internal/subscription
// crdcheck.go, docs/deploy.md); every other rule names its groups,
// resources and verbs, and no rule grants a wildcard verb.
func TestInstallerClusterRoleWildcards(t *testing.T) {
	cr := generatedRole(t)
	deliberate := rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"list"}}
	found := 0
	for i, r := range cr.Rules {
		if reflect.DeepEqual(r, deliberate) {
			found++
			continue
		}
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
			for _, s := range list {
				if strings.Contains(s, "*") {
					t.Errorf("rule %d %+v: wildcard %q", i, r, s)
				}
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %d grants non-resource URLs %v", i, r.NonResourceURLs)
		}
	}
	if found != 1 {
		t.Errorf("%d rules grant list on every resource, want exactly 1 (the CRD upgrade check)", found)
	}
}

// TestInstallerClusterRoleNeverUpdatesInstalledObjects: installed objects
// are written with server-side apply (patch) only; update is granted only
// where the code calls Update (the Subscription finalizer, the Revision
// status).
func TestInstallerClusterRoleNeverUpdatesInstalledObjects(t *testing.T) {
	allowed := map[string]bool{"operators.ferry.dev/subscriptions": true, "operators.ferry.dev/revisions/status": true}
	for _, r := range generatedRole(t).Rules {
		if !slices.Contains(r.Verbs, "update") {
			continue
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if !allowed[g+"/"+res] {
					t.Errorf("update granted on %s/%s", g, res)
				}
			}
		}
	}
}

func TestNoWildcardsInOtherRoles(t *testing.T) {
	objs := render(t, "default")
	check := func(what string, rules []rbacv1.PolicyRule) {
		for i, r := range rules {
			for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
				for _, s := range list {
					if strings.Contains(s, "*") {
						t.Errorf("%s rule %d: wildcard %q", what, i, s)
					}
				}
			}
		}
	}
	for _, o := range objs {
		switch {
		case o.Kind == "ClusterRole" && o.Metadata.Name == "ferry-installer":
			// TestInstallerClusterRoleWildcards
		case o.Kind == "ClusterRole":
			var cr rbacv1.ClusterRole
			decodeStrict(t, o, &cr)
			if cr.AggregationRule != nil {
				t.Errorf("%s: aggregation rules are not expected", o)
			}
			check(o.String(), cr.Rules)
		case o.Kind == "Role":
			var r rbacv1.Role
			decodeStrict(t, o, &r)
			check(o.String(), r.Rules)
		}
	}
}

func TestLeaderElectionRole(t *testing.T) {
	objs := render(t, "default")
	var role rbacv1.Role
	decodeStrict(t, find(t, objs, "Role", "ferry-installer-leader-election"), &role)
	lease := "installer.operators.ferry.dev" // cmd/installer/main.go LeaderElectionID
	has := func(resource, verb, name string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, map[string]string{"leases": "coordination.k8s.io", "events": ""}[resource]) &&
				slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
				return true
			}
		}
		return false
	}
	for _, v := range []string{"get", "update", "create"} {
		if !has("leases", v, lease) {
			t.Errorf("leader election Role does not grant %s on lease %s", v, lease)
		}
	}
	for _, v := range []string{"create", "patch"} {
		if !has("events", v, "") {
			t.Errorf("leader election Role does not grant %s on events", v)
		}
	}
	var rb rbacv1.RoleBinding
	decodeStrict(t, find(t, objs, "RoleBinding", "ferry-installer-leader-election"), &rb)
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name {
		t.Errorf("RoleBinding refers to %s %s", rb.RoleRef.Kind, rb.RoleRef.Name)
	}
	wantSubject(t, "RoleBinding", rb.Subjects)
	var crb rbacv1.ClusterRoleBinding
	decodeStrict(t, find(t, objs, "ClusterRoleBinding", "ferry-installer"), &crb)
	if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != "ferry-installer" {
		t.Errorf("ClusterRoleBinding refers to %s %s", crb.RoleRef.Kind, crb.RoleRef.Name)
	}
	wantSubject(t, "ClusterRoleBinding", crb.Subjects)
}

func wantSubject(t *testing.T, what string, subjects []rbacv1.Subject) {
	t.Helper()
	want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ferry-installer", Namespace: namespace}}
	if !reflect.DeepEqual(subjects, want) {
		t.Errorf("%s subjects = %+v, want %+v", what, subjects, want)
	}
}

func TestDeployments(t *testing.T) {
	objs := render(t, "default")
	for _, tc := range []struct {
		name, serviceAccount string
		probe                func(*corev1.Probe) string
	}{
		{"ferry-installer", "ferry-installer", func(p *corev1.Probe) string {
			if p.HTTPGet == nil {
				return "not an httpGet probe"
			}
			return ""
		}},
		{"catalogd", "ferry-catalogd", func(p *corev1.Probe) string {
			// Not the gRPC port: its probe waits behind clients once
			// --max-connections is reached, and speaks plaintext only.
			if p.HTTPGet == nil || p.HTTPGet.Port.String() != "metrics" {
				return "not an httpGet probe on the metrics port"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d appsv1.Deployment
			decodeStrict(t, find(t, objs, "Deployment", tc.name), &d)
			pod := d.Spec.Template.Spec
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
			}
			if pod.ServiceAccountName != tc.serviceAccount {
				t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, tc.serviceAccount)
			}
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Error("pod securityContext.runAsNonRoot is not true")
			}
			if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("pod seccompProfile is not RuntimeDefault")
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			if !strings.HasPrefix(c.Image, "ghcr.io/ferrydev/ferry/") {
				t.Errorf("image %q", c.Image)
			}
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil {
					t.Errorf("no %s probe", name)
				} else if msg := tc.probe(p); msg != "" {
					t.Errorf("%s probe: %s", name, msg)
				}
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Limits[r]; !ok {
					t.Errorf("no %s limit", r)
				}
				if _, ok := c.Resources.Requests[r]; !ok {
					t.Errorf("no %s request", r)
				}
			}
			sc := c.SecurityContext
			if sc == nil {
				t.Error("no container securityContext")
			} else {
				if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
					t.Error("container runAsNonRoot is not true")
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Error("readOnlyRootFilesystem is not true")
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Error("allowPrivilegeEscalation is not false")
				}
				if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
					t.Error("capabilities do not drop ALL (and add nothing)")
				}
			}
		})
	}
}

func TestInstallerArgs(t *testing.T) {
	var d appsv1.Deployment
	decodeStrict(t, find(t, render(t, "default"), "Deployment", "ferry-installer"), &d)
	c := d.Spec.Template.Spec.Containers[0]
	for _, want := range []string{"--leader-elect", "--leader-election-namespace=$(POD_NAMESPACE)", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8080"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %q", c.Args, want)
		}
	}
	var fromDownwardAPI bool
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			fromDownwardAPI = true
		}
	}
	if !fromDownwardAPI {
		t.Error("POD_NAMESPACE does not come from metadata.namespace")
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Error("liveness probe is not GET /healthz")
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Error("readiness probe is not GET /readyz")
	}
}

func TestCatalogd(t *testing.T) {
	objs := render(t, "default")
	var d appsv1.Deployment
	decodeStrict(t, find(t, objs, "Deployment", "catalogd"), &d)
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("catalogd pod mounts a service account token; it needs no API access")
	}
	var sa corev1.ServiceAccount
	decodeStrict(t, find(t, objs, "ServiceAccount", "ferry-catalogd"), &sa)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("ServiceAccount ferry-catalogd has automountServiceAccountToken unset or true")
	}
	for _, o := range objs {
		if o.Kind == "RoleBinding" || o.Kind == "ClusterRoleBinding" {
			if bytes.Contains(o.Raw, []byte("ferry-catalogd")) {
				t.Errorf("%s binds ferry-catalogd, which needs no API access", o)
			}
		}
	}
	var svc corev1.Service
	decodeStrict(t, find(t, objs, "Service", "catalogd"), &svc)
	ports := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p.Port
	}
	if !reflect.DeepEqual(ports, map[string]int32{"grpc": 50051, "metrics": 9090}) {
		t.Errorf("Service catalogd ports = %v, want grpc 50051 and metrics 9090", ports)
	}
}

// TestCRDsAreTheGeneratedOnes: config/default carries exactly the CRDs of
// config/crd/bases (make generate), unchanged but for labels.
func TestCRDsAreTheGeneratedOnes(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated CRDs in config/crd/bases: %v", err)
	}
	want := map[string]apiextensionsv1.CustomResourceDefinitionSpec{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range split(t, f, data) {
			var crd apiextensionsv1.CustomResourceDefinition
			decodeStrict(t, o, &crd)
			want[crd.Name] = crd.Spec
		}
	}
	got := map[string]apiextensionsv1.CustomResourceDefinitionSpec{}
	for _, o := range render(t, "default") {
		if o.Kind == "CustomResourceDefinition" {
			var crd apiextensionsv1.CustomResourceDefinition
			decodeStrict(t, o, &crd)
			got[crd.Name] = crd.Spec
		}
	}
	for name, spec := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("generated CRD %s is not in config/default", name)
		case !reflect.DeepEqual(g, spec):
			t.Errorf("CRD %s in config/default differs from config/crd/bases", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("CRD %s in config/default is not a generated one", name)
		}
	}
}

func TestSamples(t *testing.T) {
	objs := render(t, "samples")
	var cs v1alpha1.CatalogSource
	decodeStrict(t, find(t, objs, "CatalogSource", "ferry-samples"), &cs)
	if cs.Spec.Address != "catalogd.ferry-system.svc:50051" {
		t.Errorf("CatalogSource address = %q", cs.Spec.Address)
	}
	// config/default's catalogd serves plaintext: the sample must say so,
	// since a CatalogSource without spec.tls speaks TLS.
	if cs.Spec.TLS == nil || !cs.Spec.TLS.InsecurePlaintext {
		t.Errorf("CatalogSource spec.tls = %+v, want insecurePlaintext: true for the plaintext catalogd of config/default", cs.Spec.TLS)
	}
	var sub v1alpha1.Subscription
	decodeStrict(t, find(t, objs, "Subscription", "lighthouse-operator"), &sub)
	if sub.Spec.Package != "lighthouse-operator" || sub.Spec.Channel != "stable" || sub.Spec.Catalog != cs.Name {
		t.Errorf("Subscription spec = %+v", sub.Spec)
	}
	if sub.Spec.Config == nil || !slices.ContainsFunc(sub.Spec.Config.Env, func(e corev1.EnvVar) bool { return e.Name == "REGION" && e.Value != "" }) {
		t.Error("Subscription does not override REGION in spec.config.env")
	}
	find(t, objs, "Namespace", sub.Namespace)
}
