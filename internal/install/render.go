package install

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/kinds"
)

// Input is one bundle version to install for one Subscription.
type Input struct {
	// Owner is the Subscription.
	Owner types.NamespacedName
	// Namespace is the install namespace (the Subscription's).
	Namespace string
	// Package is the operator package name.
	Package string
	// Version is the bundle version.
	Version string
	// Bundle is the bundle's CSV name.
	Bundle string
	// Manifests are every object of the bundle, CSV included.
	Manifests []catalog.Manifest
	// InstallMode is the mode asked for; "" means AllNamespaces when the
	// operator supports it, otherwise OwnNamespace.
	InstallMode v1alpha1.InstallMode
	// TargetNamespaces are the namespaces a SingleNamespace or
	// MultiNamespace operator watches; empty for the other modes.
	TargetNamespaces []string
	// Config overrides parts of every Deployment; may be nil.
	Config *v1alpha1.SubscriptionConfig
}

// Rendered is the exact set of objects a version installs.
type Rendered struct {
	// Objects in apply order: CRDs, ServiceAccounts, RBAC, other objects,
	// Deployments.
	Objects []*unstructured.Unstructured
	// InstallMode is the mode chosen.
	InstallMode v1alpha1.InstallMode
	// TargetNamespaces is the value of the olm.targetNamespaces pod
	// annotation, as OLM v0 sets it: the namespaces watched, sorted and
	// comma-separated, or "" for every namespace.
	TargetNamespaces string
	// Owner, Namespace, Package, Version and Bundle repeat the Input.
	Owner     types.NamespacedName
	Namespace string
	Package   string
	Version   string
	Bundle    string
}

// Inventory returns a reference to every rendered object, in apply order.
func (r *Rendered) Inventory() []v1alpha1.ObjectReference {
	out := make([]v1alpha1.ObjectReference, len(r.Objects))
	for i, o := range r.Objects {
		out[i] = Ref(o)
	}
	return out
}

// Ref returns the reference to an object.
func Ref(o *unstructured.Unstructured) v1alpha1.ObjectReference {
	gvk := o.GroupVersionKind()
	return v1alpha1.ObjectReference{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// describe names an object for messages: "Deployment ns/name", "ClusterRole name".
func describe(r v1alpha1.ObjectReference) string {
	kind := r.Kind
	if kind == "CustomResourceDefinition" {
		kind = "CRD"
	}
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

const (
	groupAPIExtensions = kinds.GroupAPIExtensions
	groupRBAC          = kinds.GroupRBAC
	kindCRD            = "CustomResourceDefinition"
)

// Render computes the objects one bundle version installs. It makes no API
// calls. It returns *InvalidBundleError when the bundle cannot be installed
// and *UnsupportedInstallModeError when the install mode is not supported.
func Render(in Input) (*Rendered, error) {
	bad := func(format string, args ...any) error {
		return &InvalidBundleError{Bundle: in.Bundle, Reason: fmt.Sprintf(format, args...)}
	}
	if in.Namespace == "" {
		return nil, fmt.Errorf("install: no install namespace given for bundle %s", in.Bundle)
	}
	if in.Owner.Name == "" || in.Owner.Namespace == "" {
		return nil, fmt.Errorf("install: no owner given for bundle %s", in.Bundle)
	}

	var csvs []catalog.Manifest
	var shipped []*unstructured.Unstructured
	seen := map[string]bool{}
	for i, m := range in.Manifests {
		where := manifestName(i, m)
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(m.JSON, &u.Object); err != nil {
			return nil, bad("manifest %s is not a JSON object: %v", where, err)
		}
		if u.Object == nil {
			return nil, bad("manifest %s is empty", where)
		}
		if u.GetKind() == "" {
			return nil, bad("manifest %s has no kind", where)
		}
		if u.GetAPIVersion() == "" {
			if m.Kind == "" {
				where += " (kind " + u.GetKind() + ")"
			}
			return nil, bad("manifest %s has no apiVersion", where)
		}
		if u.GetKind() == catalog.KindClusterServiceVersion {
			csvs = append(csvs, m)
			continue
		}
		gvk := u.GroupVersionKind()
		info, ok := kinds.Lookup(gvk.GroupKind())
		if !ok || !info.Shippable {
			return nil, bad("manifest %s: kind %s (apiVersion %s) cannot be installed; a bundle may ship %s", where, gvk.Kind, u.GetAPIVersion(), kinds.ShippableNames())
		}
		if gvk.Kind == kindCRD && gvk.Version != "v1" {
			return nil, bad("manifest %s: CustomResourceDefinition %s uses %s; only apiextensions.k8s.io/v1 is served", where, u.GetName(), u.GetAPIVersion())
		}
		if u.GetName() == "" {
			return nil, bad("manifest %s (%s) has no metadata.name", where, gvk.Kind)
		}
		if errs := invalidName(gvk.GroupKind(), u.GetName()); len(errs) > 0 {
			return nil, bad("manifest %s: %s name %q is invalid: %s", where, gvk.Kind, u.GetName(), strings.Join(errs, "; "))
		}
		cleanShipped(u)
		if info.Namespaced {
			u.SetNamespace(in.Namespace)
		} else {
			u.SetNamespace("")
		}
		if gvk.Kind == "RoleBinding" || gvk.Kind == "ClusterRoleBinding" {
			defaultSubjectNamespace(u, in.Namespace)
		}
		key := objectKey(Ref(u))
		if seen[key] {
			return nil, bad("manifest %s: %s is shipped twice", where, describe(Ref(u)))
		}
		seen[key] = true
		shipped = append(shipped, u)
	}
	switch len(csvs) {
	case 0:
		return nil, bad("no ClusterServiceVersion among the %d manifests", len(in.Manifests))
	case 1:
	default:
		names := make([]string, len(csvs))
		for i, m := range csvs {
			names[i] = m.Name
		}
		return nil, bad("%d ClusterServiceVersions (%s); a bundle has exactly one", len(csvs), strings.Join(names, ", "))
	}

	var csv clusterServiceVersion
	if err := json.Unmarshal(csvs[0].JSON, &csv); err != nil {
		return nil, bad("ClusterServiceVersion %s cannot be read: %v", csvs[0].Name, err)
	}
	csvName := csv.Metadata.Name
	if csvName == "" {
		return nil, bad("ClusterServiceVersion has no metadata.name")
	}
	if in.Bundle != "" && csvName != in.Bundle {
		return nil, bad("the ClusterServiceVersion is named %s, not %s", csvName, in.Bundle)
	}
	spec := csv.Spec
	if spec.Install.Strategy != "deployment" {
		return nil, bad("ClusterServiceVersion %s: spec.install.strategy is %q; only \"deployment\" is supported", csvName, spec.Install.Strategy)
	}
	if n := len(spec.APIServiceDefinitions.Owned) + len(spec.APIServiceDefinitions.Required); n > 0 {
		return nil, bad("ClusterServiceVersion %s: spec.apiservicedefinitions has %d entries; API services are not supported yet", csvName, n)
	}
	if len(spec.Install.Spec.Deployments) == 0 {
		return nil, bad("ClusterServiceVersion %s: spec.install.spec.deployments is empty", csvName)
	}

	mode, err := chooseMode(in.InstallMode, spec.InstallModes)
	if err != nil {
		return nil, err
	}
	watched, err := watchedNamespaces(mode, in.TargetNamespaces, in.Namespace)
	if err != nil {
		return nil, err
	}
	target := strings.Join(watched, ",")

	if err := checkOwnedCRDs(csvName, spec.CustomResourceDefinitions.Owned, shipped); err != nil {
		return nil, bad("%s", err)
	}

	// Webhooks: their Services, certificate Secrets and configurations;
	// the serving Deployments mount the certificate, owned CRDs get their
	// conversion webhook (see webhooks.go).
	webhooks, err := planWebhooks(csvName, &spec, in.Namespace, in.Owner, mode, watched, shipped)
	if err != nil {
		return nil, bad("%s", err)
	}
	for _, u := range webhooks.objects {
		key := objectKey(Ref(u))
		if seen[key] {
			if u.GetKind() != "Service" {
				return nil, bad("ClusterServiceVersion %s: the bundle ships %s, which Ferry generates for the webhooks of the CSV", csvName, describe(Ref(u)))
			}
			// As OLM, the webhook Service replaces a shipped one.
			shipped = slices.DeleteFunc(shipped, func(s *unstructured.Unstructured) bool { return objectKey(Ref(s)) == key })
		}
		seen[key] = true
	}

	var objs []*unstructured.Unstructured
	objs = append(objs, shipped...)
	objs = append(objs, webhooks.objects...)

	if err := replaceDefaultServiceAccount(&spec.Install.Spec, operatorServiceAccountName(in.Package, csvName)); err != nil {
		return nil, bad("ClusterServiceVersion %s: %v", csvName, err)
	}

	// ServiceAccounts: one per name the CSV uses, unless the bundle ships it.
	sas := map[string]bool{}
	addSA := func(name string) {
		if name != "" && name != defaultServiceAccount {
			sas[name] = true
		}
	}
	for _, p := range spec.Install.Spec.Permissions {
		addSA(p.ServiceAccountName)
	}
	for _, p := range spec.Install.Spec.ClusterPermissions {
		addSA(p.ServiceAccountName)
	}
	for _, d := range spec.Install.Spec.Deployments {
		addSA(d.Spec.Template.Spec.ServiceAccountName)
	}
	for _, name := range sortedKeys(sas) {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return nil, bad("ClusterServiceVersion %s: service account name %q is invalid: %s", csvName, name, strings.Join(errs, "; "))
		}
		sa := &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: in.Namespace},
		}
		if seen[objectKey(v1alpha1.ObjectReference{Version: "v1", Kind: "ServiceAccount", Namespace: in.Namespace, Name: name})] {
			continue
		}
		u, err := toUnstructured(sa)
		if err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}

	// RBAC.
	// permissions: a ClusterRole for AllNamespaces; otherwise a Role in the
	// install namespace and, as OLM v0 copies them, in every other
	// namespace watched.
	roleNamespaces := []string{in.Namespace}
	for _, ns := range watched {
		if ns != in.Namespace {
			roleNamespaces = append(roleNamespaces, ns)
		}
	}
	for i, p := range spec.Install.Spec.Permissions {
		if p.ServiceAccountName == "" {
			return nil, bad("ClusterServiceVersion %s: spec.install.spec.permissions[%d] has no serviceAccountName", csvName, i)
		}
		src := fmt.Sprintf("permissions/%s/%d", p.ServiceAccountName, i)
		if mode == v1alpha1.InstallModeAllNamespaces {
			rb, err := rbacFor(csvName, "", in.Namespace, src, p)
			if err != nil {
				return nil, err
			}
			objs = append(objs, rb...)
			continue
		}
		for _, ns := range roleNamespaces {
			rb, err := rbacFor(csvName, ns, in.Namespace, src, p)
			if err != nil {
				return nil, err
			}
			objs = append(objs, rb...)
		}
	}
	for i, p := range spec.Install.Spec.ClusterPermissions {
		if p.ServiceAccountName == "" {
			return nil, bad("ClusterServiceVersion %s: spec.install.spec.clusterPermissions[%d] has no serviceAccountName", csvName, i)
		}
		src := fmt.Sprintf("clusterPermissions/%s/%d", p.ServiceAccountName, i)
		rb, err := rbacFor(csvName, "", in.Namespace, src, p)
		if err != nil {
			return nil, err
		}
		objs = append(objs, rb...)
	}

	// Deployments.
	for i, d := range spec.Install.Spec.Deployments {
		if errs := validation.IsDNS1123Subdomain(d.Name); len(errs) > 0 {
			return nil, bad("ClusterServiceVersion %s: spec.install.spec.deployments[%d].name %q is invalid: %s", csvName, i, d.Name, strings.Join(errs, "; "))
		}
		key := objectKey(v1alpha1.ObjectReference{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: in.Namespace, Name: d.Name})
		if seen[key] {
			return nil, bad("ClusterServiceVersion %s: deployment %s is listed twice", csvName, d.Name)
		}
		seen[key] = true
		u, err := renderDeployment(d, in.Namespace, target, in.Config)
		if err != nil {
			return nil, bad("ClusterServiceVersion %s: deployment %s: %v", csvName, d.Name, err)
		}
		objs = append(objs, u)
	}

	if err := checkSubjects(csvName, in.Namespace, objs); err != nil {
		return nil, err
	}
	for _, o := range objs {
		label(o, in, csvName)
	}
	sort.SliceStable(objs, func(i, j int) bool {
		ri, rj := rankOf(objs[i]), rankOf(objs[j])
		if ri != rj {
			return ri < rj
		}
		ki, kj := objs[i].GetKind(), objs[j].GetKind()
		if ki != kj {
			return ki < kj
		}
		if objs[i].GetNamespace() != objs[j].GetNamespace() {
			return objs[i].GetNamespace() < objs[j].GetNamespace()
		}
		return objs[i].GetName() < objs[j].GetName()
	})
	return &Rendered{
		Objects:          objs,
		InstallMode:      mode,
		TargetNamespaces: target,
		Owner:            in.Owner,
		Namespace:        in.Namespace,
		Package:          in.Package,
		Version:          in.Version,
		Bundle:           csvName,
	}, nil
}

// defaultServiceAccount is the ServiceAccount every namespace has, which
// every pod without a serviceAccountName runs as.
const defaultServiceAccount = "default"

// operatorServiceAccountName is the ServiceAccount Ferry gives an operator
// whose ClusterServiceVersion grants its permissions to the namespace's
// default ServiceAccount: the package name, or the CSV name without one.
func operatorServiceAccountName(pkg, csvName string) string {
	if pkg != "" {
		return pkg
	}
	return csvName
}

// replaceDefaultServiceAccount gives the operator a ServiceAccount of its
// own when the install strategy grants permissions or clusterPermissions to
// the namespace's default ServiceAccount: those grants go to name instead,
// and every Deployment that runs as default (no serviceAccountName, or
// "default") runs as name. Binding the operator's rights to default would
// hand them to every pod of the namespace that names no ServiceAccount. A
// strategy that grants nothing to default is left as it is.
func replaceDefaultServiceAccount(st *csvStrategySpec, name string) error {
	grants := false
	for _, list := range [][]csvPermission{st.Permissions, st.ClusterPermissions} {
		for i := range list {
			if list[i].ServiceAccountName == defaultServiceAccount {
				list[i].ServiceAccountName = name
				grants = true
			}
		}
	}
	if !grants {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("permissions are granted to the default ServiceAccount, and the ServiceAccount Ferry would create instead, %q, is not a valid name: %s", name, strings.Join(errs, "; "))
	}
	for i := range st.Deployments {
		ps := &st.Deployments[i].Spec.Template.Spec
		runAs := ps.ServiceAccountName
		if runAs == "" {
			runAs = ps.DeprecatedServiceAccount
		}
		if runAs == "" || runAs == defaultServiceAccount {
			ps.ServiceAccountName = name
			ps.DeprecatedServiceAccount = ""
		}
	}
	return nil
}

func manifestName(i int, m catalog.Manifest) string {
	if m.Name != "" {
		if m.Kind != "" {
			return fmt.Sprintf("#%d (%s %s)", i, m.Kind, m.Name)
		}
		return fmt.Sprintf("#%d (%s)", i, m.Name)
	}
	return fmt.Sprintf("#%d", i)
}

func rankOf(u *unstructured.Unstructured) kinds.Rank {
	return kinds.RankOf(u.GroupVersionKind().GroupKind())
}

func objectKey(r v1alpha1.ObjectReference) string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// chooseMode picks the install mode: the one requested, which the CSV must
// support, or without one AllNamespaces, else OwnNamespace.
func chooseMode(requested v1alpha1.InstallMode, modes []csvInstallMode) (v1alpha1.InstallMode, error) {
	var supported []v1alpha1.InstallMode
	for _, want := range v1alpha1.InstallModes {
		for _, m := range modes {
			if m.Type == string(want) && m.Supported {
				supported = append(supported, want)
				break
			}
		}
	}
	if requested == "" {
		switch {
		case slices.Contains(supported, v1alpha1.InstallModeAllNamespaces):
			return v1alpha1.InstallModeAllNamespaces, nil
		case slices.Contains(supported, v1alpha1.InstallModeOwnNamespace):
			return v1alpha1.InstallModeOwnNamespace, nil
		}
		return "", &UnsupportedInstallModeError{Supported: supported}
	}
	if !slices.Contains(supported, requested) {
		return "", &UnsupportedInstallModeError{Requested: requested, Supported: supported}
	}
	return requested, nil
}

// watchedNamespaces checks the target namespaces against the mode and
// returns the namespaces the operator watches, sorted: the install
// namespace for OwnNamespace, the targets for SingleNamespace and
// MultiNamespace, none (every namespace) for AllNamespaces.
func watchedNamespaces(mode v1alpha1.InstallMode, targets []string, ns string) ([]string, error) {
	refuse := func(format string, args ...any) error {
		return &UnsupportedInstallModeError{Requested: mode, Targets: fmt.Sprintf(format, args...)}
	}
	switch mode {
	case v1alpha1.InstallModeOwnNamespace, v1alpha1.InstallModeAllNamespaces:
		if len(targets) > 0 {
			return nil, refuse("spec.targetNamespaces (%s) is only used with SingleNamespace and MultiNamespace", strings.Join(targets, ", "))
		}
		if mode == v1alpha1.InstallModeOwnNamespace {
			return []string{ns}, nil
		}
		return nil, nil
	}
	switch {
	case len(targets) == 0:
		return nil, refuse("spec.targetNamespaces is empty; it names the namespaces the operator watches")
	case len(targets) > v1alpha1.MaxTargetNamespaces:
		return nil, refuse("spec.targetNamespaces has %d namespaces; at most %d are allowed", len(targets), v1alpha1.MaxTargetNamespaces)
	case mode == v1alpha1.InstallModeSingleNamespace && len(targets) != 1:
		return nil, refuse("spec.targetNamespaces has %d namespaces (%s); SingleNamespace watches exactly one", len(targets), strings.Join(targets, ", "))
	case mode == v1alpha1.InstallModeSingleNamespace && targets[0] == ns:
		return nil, refuse("spec.targetNamespaces names the Subscription's own namespace %s; that is installMode OwnNamespace", ns)
	}
	out := make([]string, 0, len(targets))
	for i, t := range targets {
		if errs := validation.IsDNS1123Label(t); len(errs) > 0 {
			return nil, refuse("spec.targetNamespaces[%d] %q is not a namespace name: %s", i, t, strings.Join(errs, "; "))
		}
		if slices.Contains(out, t) {
			return nil, refuse("spec.targetNamespaces names %s twice", t)
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// checkOwnedCRDs checks that every owned CRD the CSV lists is shipped and
// serves the version listed.
func checkOwnedCRDs(csvName string, owned []csvCRDDescription, shipped []*unstructured.Unstructured) error {
	crds := map[string]*unstructured.Unstructured{}
	for _, u := range shipped {
		if u.GetKind() == kindCRD {
			crds[u.GetName()] = u
		}
	}
	for i, o := range owned {
		crd, ok := crds[o.Name]
		if !ok {
			return fmt.Errorf("ClusterServiceVersion %s: spec.customresourcedefinitions.owned[%d] names CRD %s, which the bundle does not ship", csvName, i, o.Name)
		}
		if o.Version == "" {
			continue
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		found := false
		for _, v := range versions {
			if vm, ok := v.(map[string]any); ok && vm["name"] == o.Version {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("ClusterServiceVersion %s: spec.customresourcedefinitions.owned[%d] names version %s of CRD %s, which its spec.versions does not define", csvName, i, o.Version, o.Name)
		}
	}
	return nil
}

// cleanShipped drops what the server owns from a shipped manifest.
func cleanShipped(u *unstructured.Unstructured) {
	delete(u.Object, "status")
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "managedFields", "ownerReferences", "selfLink", "generateName"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
}

// defaultSubjectNamespace puts ServiceAccount subjects without a namespace
// into the install namespace.
func defaultSubjectNamespace(u *unstructured.Unstructured, ns string) {
	subjects, ok, _ := unstructured.NestedSlice(u.Object, "subjects")
	if !ok {
		return
	}
	for _, s := range subjects {
		if sm, ok := s.(map[string]any); ok && sm["kind"] == "ServiceAccount" {
			if n, _ := sm["namespace"].(string); n == "" {
				sm["namespace"] = ns
			}
		}
	}
	_ = unstructured.SetNestedSlice(u.Object, subjects, "subjects")
}

// label adds the ownership labels and the bundle annotation.
func label(u *unstructured.Unstructured, in Input, csvName string) {
	l := u.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range OwnerLabels(in.Owner) {
		l[k] = v
	}
	if in.Package != "" {
		l[LabelPackage] = LabelValue(in.Package)
	}
	u.SetLabels(l)
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationBundle] = csvName
	u.SetAnnotations(a)
}

// rbacName builds a deterministic name: <csv>-<sa>-<hash>, at most 253
// characters and a valid DNS subdomain.
func rbacName(csvName, sa string, hashOf any) (string, error) {
	js, err := json.Marshal(hashOf)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(js)
	h := hex.EncodeToString(sum[:])[:10]
	base := csvName + "-" + sa
	if maxBase := validation.DNS1123SubdomainMaxLength - len(h) - 1; len(base) > maxBase {
		base = base[:maxBase]
	}
	base = strings.TrimRight(base, "-.")
	return base + "-" + h, nil
}

// rbacFor renders the role and binding that grant one permissions entry to
// its ServiceAccount in saNS: a Role and RoleBinding in roleNS, or a
// ClusterRole and ClusterRoleBinding when roleNS is "".
func rbacFor(csvName, roleNS, saNS, source string, p csvPermission) ([]*unstructured.Unstructured, error) {
	rules := p.Rules
	if rules == nil {
		rules = []rbacv1.PolicyRule{}
	}
	cluster := roleNS == ""
	// The hash keeps the names of roles in the install namespace as they
	// were before roles were rendered in other namespaces too.
	hashNS := roleNS
	if cluster {
		hashNS = saNS
	}
	name, err := rbacName(csvName, p.ServiceAccountName, struct {
		Namespace string
		Source    string
		Cluster   bool
		Rules     []rbacv1.PolicyRule
	}{hashNS, source, cluster, rules})
	if err != nil {
		return nil, err
	}
	meta := metav1.ObjectMeta{Name: name, Annotations: map[string]string{AnnotationGeneratedFrom: source}}
	subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: p.ServiceAccountName, Namespace: saNS}}
	var role, binding runtime.Object
	if cluster {
		role = &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: meta, Rules: rules}
		binding = &rbacv1.ClusterRoleBinding{
			TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}, ObjectMeta: meta,
			RoleRef: rbacv1.RoleRef{APIGroup: groupRBAC, Kind: "ClusterRole", Name: name}, Subjects: subjects,
		}
	} else {
		meta.Namespace = roleNS
		role = &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta, Rules: rules}
		binding = &rbacv1.RoleBinding{
			TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta,
			RoleRef: rbacv1.RoleRef{APIGroup: groupRBAC, Kind: "Role", Name: name}, Subjects: subjects,
		}
	}
	ru, err := toUnstructured(role)
	if err != nil {
		return nil, err
	}
	bu, err := toUnstructured(binding)
	if err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{ru, bu}, nil
}

// renderDeployment builds the Deployment for one CSV deployment entry.
func renderDeployment(d csvDeployment, ns, target string, cfg *v1alpha1.SubscriptionConfig) (*unstructured.Unstructured, error) {
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: ns, Labels: maps(d.Label)},
		Spec:       *d.Spec.DeepCopy(),
	}
	if dep.Spec.Selector == nil {
		return nil, fmt.Errorf("spec.selector is missing")
	}
	if len(dep.Spec.Template.Spec.Containers) == 0 {
		return nil, fmt.Errorf("spec.template.spec.containers is empty")
	}
	tpl := &dep.Spec.Template
	if tpl.Annotations == nil {
		tpl.Annotations = map[string]string{}
	}
	tpl.Annotations[AnnotationTargetNamespaces] = target
	applyConfig(&tpl.Spec, cfg)
	if cfg != nil {
		dep.Annotations = addAnnotations(dep.Annotations, cfg.Annotations)
		tpl.Annotations = addAnnotations(tpl.Annotations, cfg.Annotations)
	}
	u, err := toUnstructured(dep)
	if err != nil {
		return nil, err
	}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	return u, nil
}

func maps(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// applyConfig merges the Subscription's config into a pod spec, as OLM v0
// does, on every container and init container: env (same name replaces,
// others appended), envFrom (appended unless an equal entry exists),
// volumeMounts (the config's mounts of a name replace the bundle's of that
// name, others appended) and resources (replaced); on the pod: volumes (same
// name replaces, others appended), nodeSelector (merged), tolerations
// (appended unless identical) and affinity (each part set replaces the
// bundle's; an empty part or an empty affinity removes).
func applyConfig(ps *corev1.PodSpec, cfg *v1alpha1.SubscriptionConfig) {
	if cfg == nil {
		return
	}
	for _, list := range [][]corev1.Container{ps.InitContainers, ps.Containers} {
		for i := range list {
			c := &list[i]
			for _, e := range cfg.Env {
				j := slices.IndexFunc(c.Env, func(x corev1.EnvVar) bool { return x.Name == e.Name })
				if j >= 0 {
					c.Env[j] = *e.DeepCopy()
				} else {
					c.Env = append(c.Env, *e.DeepCopy())
				}
			}
			for _, e := range cfg.EnvFrom {
				if !slices.ContainsFunc(c.EnvFrom, func(x corev1.EnvFromSource) bool { return equality.Semantic.DeepEqual(x, e) }) {
					c.EnvFrom = append(c.EnvFrom, *e.DeepCopy())
				}
			}
			c.VolumeMounts = mergeVolumeMounts(c.VolumeMounts, cfg.VolumeMounts)
			if cfg.Resources != nil {
				c.Resources = *cfg.Resources.DeepCopy()
			}
		}
	}
	for _, v := range cfg.Volumes {
		j := slices.IndexFunc(ps.Volumes, func(x corev1.Volume) bool { return x.Name == v.Name })
		if j >= 0 {
			ps.Volumes[j] = *v.DeepCopy()
		} else {
			ps.Volumes = append(ps.Volumes, *v.DeepCopy())
		}
	}
	if len(cfg.NodeSelector) > 0 {
		if ps.NodeSelector == nil {
			ps.NodeSelector = map[string]string{}
		}
		for k, v := range cfg.NodeSelector {
			ps.NodeSelector[k] = v
		}
	}
	for _, t := range cfg.Tolerations {
		if !slices.ContainsFunc(ps.Tolerations, func(x corev1.Toleration) bool {
			return x.MatchToleration(&t) && x.Value == t.Value && ptrEq(x.TolerationSeconds, t.TolerationSeconds)
		}) {
			ps.Tolerations = append(ps.Tolerations, *t.DeepCopy())
		}
	}
	ps.Affinity = mergeAffinity(ps.Affinity, cfg.Affinity)
}

// mergeVolumeMounts returns the bundle's mounts with every mount whose name
// the config mounts removed, and the config's mounts appended: the first of
// the bundle's mounts of a name is where the config's go, so the order of
// the others is kept.
func mergeVolumeMounts(have, cfg []corev1.VolumeMount) []corev1.VolumeMount {
	if len(cfg) == 0 {
		return have
	}
	names := map[string]bool{}
	for _, m := range cfg {
		names[m.Name] = true
	}
	out := make([]corev1.VolumeMount, 0, len(have)+len(cfg))
	placed := map[string]bool{}
	for _, m := range have {
		if !names[m.Name] {
			out = append(out, m)
			continue
		}
		if placed[m.Name] {
			continue
		}
		placed[m.Name] = true
		for _, c := range cfg {
			if c.Name == m.Name {
				out = append(out, *c.DeepCopy())
			}
		}
	}
	for _, c := range cfg {
		if !placed[c.Name] {
			out = append(out, *c.DeepCopy())
		}
	}
	return out
}

// mergeAffinity applies the config's affinity: nil keeps the bundle's, an
// empty one removes it, otherwise each part set replaces the bundle's part
// and an empty part removes it.
func mergeAffinity(have, cfg *corev1.Affinity) *corev1.Affinity {
	if cfg == nil {
		return have
	}
	var zero corev1.Affinity
	if equality.Semantic.DeepEqual(*cfg, zero) {
		return nil
	}
	out := &corev1.Affinity{}
	if have != nil {
		out = have.DeepCopy()
	}
	if cfg.NodeAffinity != nil {
		out.NodeAffinity = nil
		if !equality.Semantic.DeepEqual(*cfg.NodeAffinity, corev1.NodeAffinity{}) {
			out.NodeAffinity = cfg.NodeAffinity.DeepCopy()
		}
	}
	if cfg.PodAffinity != nil {
		out.PodAffinity = nil
		if !equality.Semantic.DeepEqual(*cfg.PodAffinity, corev1.PodAffinity{}) {
			out.PodAffinity = cfg.PodAffinity.DeepCopy()
		}
	}
	if cfg.PodAntiAffinity != nil {
		out.PodAntiAffinity = nil
		if !equality.Semantic.DeepEqual(*cfg.PodAntiAffinity, corev1.PodAntiAffinity{}) {
			out.PodAntiAffinity = cfg.PodAntiAffinity.DeepCopy()
		}
	}
	if equality.Semantic.DeepEqual(*out, zero) {
		return nil
	}
	return out
}

// addAnnotations adds the config's annotations to have; a key have already
// holds keeps its value.
func addAnnotations(have, cfg map[string]string) map[string]string {
	if len(cfg) == 0 {
		return have
	}
	if have == nil {
		have = make(map[string]string, len(cfg))
	}
	for k, v := range cfg {
		if _, ok := have[k]; !ok {
			have[k] = v
		}
	}
	return have
}

func ptrEq(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("install: converting %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
