// Package config holds Ferry's Kustomize manifests; this test guards them.
//
// It renders config/default and config/samples with `kubectl kustomize`
// and checks that every object parses, that the installer's ClusterRole
// grants what the code needs and no more than named resources, that both
// Deployments are hardened and probed, and that the CRDs are the generated
// ones from config/crd/bases. See docs/deploy.md.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

const namespace = "ferry-system"

// object is one rendered manifest: its kind, name and YAML.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	raw []byte
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Metadata.Namespace, o.Metadata.Name)
}

// render runs `kubectl kustomize dir` and splits its output into objects.
func render(t *testing.T, dir string) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not found in PATH: it renders the Kustomize manifests (kubectl kustomize); install kubectl to run this test")
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
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: splitting YAML: %v", what, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, doc)
		}
		o.raw = doc
		out = append(out, o)
	}
	return out
}

// decodeStrict unmarshals o into out, refusing unknown fields.
func decodeStrict(t *testing.T, o object, out any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.raw, out); err != nil {
		t.Fatalf("%s does not parse as %T: %v", o, out, err)
	}
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %q rendered", kind, name)
	return object{}
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
	case "CatalogSource":
		return &v1alpha1.CatalogSource{}
	case "Subscription":
		return &v1alpha1.Subscription{}
	}
	return nil
}

func TestEveryObjectParses(t *testing.T) {
	for _, dir := range []string{"default", "samples"} {
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
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
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

var (
	readWatch = []string{"get", "list", "watch"}
	// manage is what install.Applier does to every kind a bundle may ship:
	// get/list/watch through the cached client (metadata reads in
	// apply.go getMeta start cluster-wide informers), create+patch for
	// server-side apply (apply.go applyOne) and delete for pruning and
	// uninstalling (apply.go deleteOwned, uninstall.go).
	manage = []string{"get", "list", "watch", "create", "patch", "delete"}
)

// shippable mirrors the unexported map of the same name in
// internal/install/render.go: the kinds a bundle may ship, as resources.
var shippable = []struct{ group, resource string }{
	{"apiextensions.k8s.io", "customresourcedefinitions"},
	{"", "serviceaccounts"},
	{"rbac.authorization.k8s.io", "roles"},
	{"rbac.authorization.k8s.io", "clusterroles"},
	{"rbac.authorization.k8s.io", "rolebindings"},
	{"rbac.authorization.k8s.io", "clusterrolebindings"},
	{"", "services"},
	{"", "configmaps"},
	{"", "secrets"},
	{"monitoring.coreos.com", "servicemonitors"},
	{"monitoring.coreos.com", "prometheusrules"},
	{"policy", "poddisruptionbudgets"},
	{"scheduling.k8s.io", "priorityclasses"},
	{"networking.k8s.io", "networkpolicies"},
	{"autoscaling.k8s.io", "verticalpodautoscalers"},
	{"apps", "deployments"},
}

// installedKinds mirrors subscription.InstalledKinds
// (internal/subscription/setup.go): the kinds the installer's cache watches
// cluster-wide, selected by Ferry's managed-by label.
var installedKinds = []struct{ group, resource string }{
	{"apps", "deployments"},
	{"", "serviceaccounts"},
	{"", "services"},
	{"", "configmaps"},
	{"rbac.authorization.k8s.io", "roles"},
	{"rbac.authorization.k8s.io", "rolebindings"},
	{"rbac.authorization.k8s.io", "clusterroles"},
	{"rbac.authorization.k8s.io", "clusterrolebindings"},
	{"apiextensions.k8s.io", "customresourcedefinitions"},
}

// installerNeeds is every permission the installer's code uses, cluster-wide.
// Keep it in step with cmd/installer/main.go, internal/install,
// internal/subscription and internal/catalogsource.
func installerNeeds() []permission {
	var out []permission
	add := func(group, resource string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, permission{group, resource, v})
		}
	}
	const ferry = "operators.ferry.dev"
	// internal/subscription: watch, add/remove the finalizer (update),
	// create child Subscriptions for dependencies, Status().Update.
	add(ferry, "subscriptions", append(readWatch, "create", "update")...)
	add(ferry, "subscriptions/status", "update")
	add(ferry, "revisions", append(readWatch, "create", "delete")...)
	add(ferry, "revisions/status", "update")
	// internal/catalogsource: watch, Status().Patch.
	add(ferry, "catalogsources", readWatch...)
	add(ferry, "catalogsources/status", "patch")
	for _, k := range shippable {
		add(k.group, k.resource, manage...)
	}
	// Writing roles with permissions the installer does not hold itself,
	// and binding them (the API server's escalation check).
	add("rbac.authorization.k8s.io", "roles", "escalate", "bind")
	add("rbac.authorization.k8s.io", "clusterroles", "escalate", "bind")
	// internal/install/health.go podProblems: uncached list of pods.
	add("", "pods", "list")
	// Events on Subscriptions in their namespaces (record.EventRecorder).
	add("events.k8s.io", "events", "create", "patch")

	// Everything the manager's cache watches (installedKinds) must be
	// covered by readWatch: a kind watched without RBAC leaves the cache
	// unsynced.
	for _, k := range installedKinds {
		add(k.group, k.resource, readWatch...)
	}
	return out
}

// covers reports whether rules grant p.
func covers(rules []rbacv1.PolicyRule, p permission) bool {
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			continue
		}
		if slices.Contains(r.APIGroups, p.group) && slices.Contains(r.Resources, p.resource) && slices.Contains(r.Verbs, p.verb) {
			return true
		}
	}
	return false
}

func installerClusterRole(t *testing.T, objs []object) rbacv1.ClusterRole {
	t.Helper()
	var cr rbacv1.ClusterRole
	decodeStrict(t, find(t, objs, "ClusterRole", "ferry-installer"), &cr)
	return cr
}

func TestInstallerClusterRoleCoversTheCode(t *testing.T) {
	cr := installerClusterRole(t, render(t, "default"))
	for _, p := range installerNeeds() {
		if !covers(cr.Rules, p) {
			t.Errorf("ClusterRole ferry-installer does not grant %s", p)
		}
	}
}

func TestInstallerClusterRoleGrantsNothingElse(t *testing.T) {
	cr := installerClusterRole(t, render(t, "default"))
	need := map[permission]bool{}
	for _, p := range installerNeeds() {
		need[p] = true
	}
	for i, r := range cr.Rules {
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("rule %d: nonResourceURLs/resourceNames are not expected in the ClusterRole", i)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if p := (permission{g, res, v}); !need[p] {
						t.Errorf("rule %d grants %s, which the code does not need (or add it to installerNeeds with the reason)", i, p)
					}
				}
			}
		}
	}
}

func TestNoWildcards(t *testing.T) {
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
		switch o.Kind {
		case "ClusterRole":
			var cr rbacv1.ClusterRole
			decodeStrict(t, o, &cr)
			if cr.AggregationRule != nil {
				t.Errorf("%s: aggregation rules are not expected", o)
			}
			check(o.String(), cr.Rules)
		case "Role":
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
			if p.GRPC == nil || p.GRPC.Port != 50051 {
				return "not a grpc probe on 50051"
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
			if bytes.Contains(o.raw, []byte("ferry-catalogd")) {
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
