package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/crdsafety"
	"github.com/ferrydev/ferry/internal/install"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// DefaultDiffTimeout bounds diff.
const DefaultDiffTimeout = 5 * time.Minute

// Actions of an object in a diff.
const (
	actionCreate    = "create"
	actionChange    = "change"
	actionUnchanged = "unchanged"
	actionDelete    = "delete"
	actionKeep      = "keep"
	actionReplace   = "replace"
	actionConflict  = "conflict"
	actionError     = "error"
)

// DiffReport is what diff found: the result of the server-side apply dry
// run of every object of the target version, the objects the upgrade would
// delete, the CRD safety verdict and the RBAC delta.
type DiffReport struct {
	// Subscription is namespace/name.
	Subscription string `json:"subscription"`
	// From is the installed version; empty before the first install.
	From string `json:"from,omitempty"`
	// To is the target version.
	To string `json:"to"`
	// Bundle is the target's bundle (CSV) name.
	Bundle string `json:"bundle"`
	// Catalog is the CatalogSource the bundle was read from.
	Catalog string `json:"catalog"`
	// Objects are the target's objects in apply order, then the objects of
	// the installed version the target no longer ships.
	Objects []ObjectDiff `json:"objects"`
	// CRDSafety is the verdict on every CRD the target changes.
	CRDSafety []CRDVerdict `json:"crdSafety,omitempty"`
	// RBAC is what the operator's service accounts gain and lose.
	RBAC RBACDelta `json:"rbac"`
}

// ObjectDiff is one object of the diff.
type ObjectDiff struct {
	// Object is e.g. "Deployment ns/name" or "CRD beacons.example.com".
	Object string `json:"object"`
	// Action is create, change, unchanged, replace (a Deployment whose
	// selector changed is deleted and created), delete, keep (a CRD no
	// longer shipped is kept), conflict (the object is not Ferry's for this
	// Subscription: the installer would stop) or error (the dry run failed).
	Action string `json:"action"`
	// Diff is the unified diff of the live object and the dry run's result
	// (managedFields, resourceVersion, generation, uid and creationTimestamp
	// left out).
	Diff string `json:"diff,omitempty"`
	// Message says why, for conflict, error, replace, delete and keep.
	Message string `json:"message,omitempty"`
}

// CRDVerdict is internal/crdsafety's verdict on one CRD.
type CRDVerdict struct {
	// CRD is the CRD's name.
	CRD string `json:"crd"`
	// Policy is the Subscription's spec.crdUpgradeSafety.
	Policy string `json:"policy"`
	// Blocked: under Strict, the installer would not upgrade.
	Blocked bool `json:"blocked"`
	// ObjectsChecked is the number of custom resources validated.
	ObjectsChecked int `json:"objectsChecked"`
	// Findings are the checks' findings.
	Findings []string `json:"findings,omitempty"`
	// Error says why the check could not be completed.
	Error string `json:"error,omitempty"`
}

// RBACDelta lists permissions as "<who> <scope>: <verb> <resource>".
type RBACDelta struct {
	// Added are permissions the target grants that the installed version does not.
	Added []string `json:"added,omitempty"`
	// Removed are permissions the installed version grants that the target does not.
	Removed []string `json:"removed,omitempty"`
}

func (a *app) diffCommand() *cobra.Command {
	var format, version string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "diff SUBSCRIPTION",
		Short: "Show what the pending (or a chosen) upgrade would change in the cluster",
		Long: `diff renders the target version from the bundle its CatalogSource's catalogd
serves, as the installer does, and asks the API server for a server-side apply
dry run of every object (field manager "ferry", force), then shows the live
object against the dry run's result, the objects the upgrade would delete, the
CRD upgrade safety verdict and what the operator's RBAC gains and loses.
The target is --version, else status.availableUpgrade, else status.targetVersion.
Nothing in the cluster is changed.`,
		Example: `  kubectl ferry diff lighthouse-operator -n lighthouse
  kubectl ferry diff lighthouse-operator --version 1.4.0 -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeSubscriptions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			sub, err := getSubscription(ctx, c, ns, args[0])
			if err != nil {
				return err
			}
			rep, err := a.diff(ctx, c, sub, version)
			if err != nil {
				return err
			}
			if format != formatTable {
				return printData(a.out, format, rep)
			}
			return writeDiff(a.out, rep)
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "version to compare with (default: the pending upgrade)")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultDiffTimeout, "bounds the whole diff: the bundle, the dry runs and the CRD checks, which read every custom resource of a changed CRD")
	addOutputFlag(cmd, &format)
	return cmd
}

// targetVersion is --version, else the pending upgrade.
func targetVersion(sub *v1alpha1.Subscription, version string) (string, error) {
	switch {
	case version != "":
		return version, nil
	case sub.Status.AvailableUpgrade != nil:
		return sub.Status.AvailableUpgrade.Version, nil
	case sub.Status.TargetVersion != "" && sub.Status.TargetVersion != sub.Status.InstalledVersion:
		return sub.Status.TargetVersion, nil
	}
	return "", fmt.Errorf("subscription %s has no pending upgrade (installed: %s, latest: %s); name a version with --version",
		key(sub), orDefault(sub.Status.InstalledVersion, "nothing"), orDefault(sub.Status.LatestVersion, "unknown"))
}

// diff computes the DiffReport of moving sub to version.
func (a *app) diff(ctx context.Context, c client.Client, sub *v1alpha1.Subscription, version string) (*DiffReport, error) {
	to, err := targetVersion(sub, version)
	if err != nil {
		return nil, err
	}
	catName := orDefault(sub.Spec.Catalog, sub.Status.Catalog)
	if catName == "" {
		return nil, fmt.Errorf("subscription %s names no catalog and has not been resolved from one yet (spec.catalog and status.catalog are empty)", key(sub))
	}
	cs, err := getCatalogSource(ctx, c, catName)
	if err != nil {
		return nil, err
	}
	ms, bundle, err := a.fetchManifests(ctx, c, cs, sub.Spec.Package, to)
	if err != nil {
		return nil, err
	}
	owner := types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}
	r, err := install.Render(install.Input{
		Owner: owner, Namespace: sub.Namespace, Package: sub.Spec.Package, Version: to, Bundle: bundle,
		Manifests: ms, InstallMode: sub.Spec.InstallMode, TargetNamespaces: sub.Spec.TargetNamespaces, Config: sub.Spec.Config,
	})
	if err != nil {
		return nil, fmt.Errorf("rendering %s %s for %s: %w", sub.Spec.Package, to, key(sub), err)
	}
	rep := &DiffReport{Subscription: key(sub), From: sub.Status.InstalledVersion, To: to, Bundle: bundle, Catalog: catName}

	var liveRoles, newRoles []*unstructured.Unstructured
	want := map[string]bool{}
	for _, o := range r.Objects {
		ref := install.Ref(o)
		want[refKey(ref)] = true
		stamp(o, owner, sub.Spec.Package)
		d, live, err := dryRun(ctx, c, o, owner, sub.Spec.Package)
		if err != nil {
			return nil, err
		}
		rep.Objects = append(rep.Objects, d)
		if isRole(ref) {
			newRoles = append(newRoles, o)
		}
		if live != nil && isCRD(ref) {
			v, err := crdVerdict(ctx, c, live, o, sub.Spec.CRDUpgradeSafety)
			if err != nil {
				return nil, err
			}
			rep.CRDSafety = append(rep.CRDSafety, v)
		}
	}
	for _, ref := range sub.Status.Inventory {
		if want[refKey(ref)] {
			if isRole(ref) {
				if live, err := getLive(ctx, c, ref); err == nil && live != nil {
					liveRoles = append(liveRoles, live)
				}
			}
			continue
		}
		d := ObjectDiff{Object: describe(ref)}
		live, err := getLive(ctx, c, ref)
		switch {
		case err != nil:
			d.Action, d.Message = actionError, err.Error()
		case live == nil:
			continue
		case isCRD(ref):
			d.Action, d.Message = actionKeep, "no longer shipped; CRDs are never deleted by an upgrade"
		case !install.IsOwner(live, owner):
			continue
		default:
			d.Action, d.Message = actionDelete, "no longer shipped"
			if isRole(ref) {
				liveRoles = append(liveRoles, live)
			}
		}
		rep.Objects = append(rep.Objects, d)
	}
	rep.RBAC, err = rbacDelta(liveRoles, newRoles)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// fetchManifests reads a bundle's manifests from a CatalogSource's catalogd
// and checks them as the installer does: the package and version asked
// for, manifests that hash to the digest the catalog gives, and exactly one
// ClusterServiceVersion, named as the bundle.
func (a *app) fetchManifests(ctx context.Context, c client.Client, cs *v1alpha1.CatalogSource, pkg, version string) ([]catalog.Manifest, string, error) {
	cc, err := a.dialCatalog(ctx, c, cs)
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = cc.Close() }()
	b, err := cc.client.CatalogService().GetBundle(ctx, &catalogv1.GetBundleRequest{Package: pkg, Version: version})
	if status.Code(err) == codes.NotFound {
		nf := &NotFoundError{Kind: "version", Name: version, Where: fmt.Sprintf("package %s of catalog %q", pkg, cs.Name)}
		if p, perr := cc.client.CatalogService().GetPackage(ctx, &catalogv1.GetPackageRequest{Name: pkg}); perr == nil {
			seen := map[string]bool{}
			for _, ch := range p.GetChannels() {
				for _, e := range ch.GetEntries() {
					if v := e.GetVersion(); !seen[v] {
						seen[v] = true
						nf.Known = append(nf.Known, v)
					}
				}
			}
			sort.Strings(nf.Known)
		}
		return nil, "", nf
	}
	if err != nil {
		return nil, "", cc.wrap(fmt.Sprintf("GetBundle %s %s", pkg, version), err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("catalog %q at %s: bundle %s %s: %s (%s)", cs.Name, cc.client.Address(), pkg, version, fmt.Sprintf(format, args...), v1alpha1.ReasonContentMismatch)
	}
	if b.GetPackage() != pkg || b.GetVersion() != version {
		return nil, "", bad("the answer is version %q of package %q", b.GetVersion(), b.GetPackage())
	}
	ms := catalogsource.ManifestsOf(b)
	announced := b.GetManifestsDigest()
	if announced == "" {
		return nil, "", bad("the catalog gives no manifests digest, so the manifests cannot be verified")
	}
	if got := catalog.ManifestsDigest(ms); got != announced {
		return nil, "", bad("the manifests hash to %s, the catalog announced %s", got, announced)
	}
	var csvs []string
	for _, m := range ms {
		if m.Kind == catalog.KindClusterServiceVersion {
			csvs = append(csvs, m.Name)
		}
	}
	if len(csvs) != 1 || csvs[0] != b.GetName() {
		return nil, "", bad("the manifests hold ClusterServiceVersions %v, want exactly %s", csvs, b.GetName())
	}
	return ms, b.GetName(), nil
}

// stamp sets what the installer sets on every object it applies: the owner
// labels, the package label and the owner annotation.
func stamp(o *unstructured.Unstructured, owner types.NamespacedName, pkg string) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range install.OwnerLabels(owner) {
		l[k] = v
	}
	l[install.LabelPackage] = install.LabelValue(pkg)
	o.SetLabels(l)
	an := o.GetAnnotations()
	if an == nil {
		an = map[string]string{}
	}
	an[install.AnnotationOwner] = owner.String()
	o.SetAnnotations(an)
}

// getLive reads an object; nil when it does not exist.
func getLive(ctx context.Context, c client.Client, ref v1alpha1.ObjectReference) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion(ref))
	u.SetKind(ref.Kind)
	err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u)
	switch {
	case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", describe(ref), err)
	}
	return u, nil
}

// dryRun applies o with dryRun=All and compares the result with the live
// object. Failures of the dry run itself are part of the diff; only errors
// reading the live object are returned.
func dryRun(ctx context.Context, c client.Client, o *unstructured.Unstructured, owner types.NamespacedName, pkg string) (ObjectDiff, *unstructured.Unstructured, error) {
	ref := install.Ref(o)
	d := ObjectDiff{Object: describe(ref)}
	live, err := getLive(ctx, c, ref)
	if err != nil {
		return d, nil, err
	}
	if live != nil && !mayChange(live, ref, owner, pkg) {
		d.Action = actionConflict
		d.Message = fmt.Sprintf("exists and was not installed by Ferry for %s (%s): the installer would stop before applying anything", owner, v1alpha1.ReasonOwnershipConflict)
		if m := managers(live); m != "" {
			d.Message += "; managed by " + m
		}
		return d, live, nil
	}
	res := o.DeepCopy()
	err = c.Apply(ctx, client.ApplyConfigurationFromUnstructured(res), client.FieldOwner(install.FieldManager), client.ForceOwnership, client.DryRunAll)
	if err != nil {
		if live != nil && ref.Kind == "Deployment" && apierrors.IsInvalid(err) && strings.Contains(err.Error(), "spec.selector") {
			d.Action, d.Message = actionReplace, "its selector changed, which cannot be changed in place: the installer deletes and creates it"
			return d, live, nil
		}
		d.Action, d.Message = actionError, "the dry run failed: "+err.Error()
		return d, live, nil
	}
	var before []byte
	if live != nil {
		if before, err = normalized(live); err != nil {
			return d, nil, err
		}
	}
	after, err := normalized(res)
	if err != nil {
		return d, nil, err
	}
	switch {
	case live == nil:
		d.Action = actionCreate
		if isCRD(ref) {
			d.Message = "new CRD"
			return d, nil, nil
		}
	case string(before) == string(after):
		d.Action = actionUnchanged
		return d, live, nil
	default:
		d.Action = actionChange
	}
	var a []string
	if live != nil {
		a = difflib.SplitLines(strings.TrimSuffix(string(before), "\n"))
	}
	d.Diff, err = difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: a, B: difflib.SplitLines(strings.TrimSuffix(string(after), "\n")),
		FromFile: "live", ToFile: "dry-run", Context: 3,
	})
	if err != nil {
		return d, nil, err
	}
	return d, live, nil
}

// mayChange reports whether the installer may change the live object for
// owner: it installed it for owner, or it is a CRD of the same package.
func mayChange(live *unstructured.Unstructured, ref v1alpha1.ObjectReference, owner types.NamespacedName, pkg string) bool {
	if install.IsOwner(live, owner) {
		return true
	}
	l := live.GetLabels()
	return isCRD(ref) && l[install.LabelManagedBy] == install.ManagedByValue && l[install.LabelPackage] == install.LabelValue(pkg)
}

// managers lists the field managers of an object.
func managers(u *unstructured.Unstructured) string {
	var out []string
	for _, m := range u.GetManagedFields() {
		if !slices.Contains(out, m.Manager) {
			out = append(out, m.Manager)
		}
	}
	return strings.Join(out, ", ")
}

// normalized is an object as YAML without what every write changes.
func normalized(u *unstructured.Unstructured) ([]byte, error) {
	c := u.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	return yaml.Marshal(c.Object)
}

// crdVerdict runs internal/crdsafety on the live CRD and the target's.
func crdVerdict(ctx context.Context, c client.Client, live, target *unstructured.Unstructured, policy v1alpha1.CRDUpgradeSafety) (CRDVerdict, error) {
	v := CRDVerdict{CRD: target.GetName(), Policy: orDefault(string(policy), string(v1alpha1.CRDSafetyStrict))}
	var oldCRD, newCRD apiextensionsv1.CustomResourceDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, &oldCRD); err != nil {
		return v, fmt.Errorf("reading live CRD %s: %w", live.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(target.Object, &newCRD); err != nil {
		return v, fmt.Errorf("reading CRD %s of the target: %w", target.GetName(), err)
	}
	// A check that cannot be completed is part of the verdict, not a
	// failure of diff: "not checked", with why.
	res, cerr := (&crdsafety.Checker{Client: c}).Check(ctx, &oldCRD, &newCRD, crdsafety.Policy(policy))
	if cerr != nil {
		v.Error = cerr.Error()
	}
	v.Blocked, v.ObjectsChecked = res.Blocked, res.ObjectsChecked
	for _, f := range res.Findings {
		v.Findings = append(v.Findings, f.Message)
	}
	return v, nil
}

// rbacDelta compares the permissions the roles grant, by the service
// account they were generated for.
func rbacDelta(live, target []*unstructured.Unstructured) (RBACDelta, error) {
	old, err := permissions(live)
	if err != nil {
		return RBACDelta{}, err
	}
	next, err := permissions(target)
	if err != nil {
		return RBACDelta{}, err
	}
	var d RBACDelta
	for p := range next {
		if !old[p] {
			d.Added = append(d.Added, p)
		}
	}
	for p := range old {
		if !next[p] {
			d.Removed = append(d.Removed, p)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	return d, nil
}

// permissions expands roles into one string per verb and resource.
func permissions(roles []*unstructured.Unstructured) (map[string]bool, error) {
	out := map[string]bool{}
	for _, u := range roles {
		var rules []rbacv1.PolicyRule
		if raw, ok := u.Object["rules"]; ok && raw != nil {
			var role rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
				return nil, fmt.Errorf("reading the rules of %s: %w", describe(install.Ref(u)), err)
			}
			rules = role.Rules
		}
		who := "role " + u.GetName()
		if src := u.GetAnnotations()[install.AnnotationGeneratedFrom]; src != "" {
			parts := strings.Split(src, "/")
			if len(parts) >= 2 {
				who = "serviceaccount " + parts[1]
			}
		}
		scope := "cluster-wide"
		if u.GetKind() == "Role" {
			scope = "in " + u.GetNamespace()
		}
		for _, r := range rules {
			names := ""
			if len(r.ResourceNames) > 0 {
				names = " " + strings.Join(r.ResourceNames, ",")
			}
			for _, verb := range r.Verbs {
				for _, url := range r.NonResourceURLs {
					out[fmt.Sprintf("%s %s: %s %s", who, scope, verb, url)] = true
				}
				for _, g := range orAll(r.APIGroups) {
					for _, res := range r.Resources {
						if g != "" {
							res += "." + g
						}
						out[fmt.Sprintf("%s %s: %s %s%s", who, scope, verb, res, names)] = true
					}
				}
			}
		}
	}
	return out, nil
}

func orAll(groups []string) []string {
	if len(groups) == 0 {
		return []string{""}
	}
	return groups
}

// writeDiff is the human view of a DiffReport.
func writeDiff(w io.Writer, rep *DiffReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Subscription %s: %s -> %s (%s from catalog %s)\n", rep.Subscription, orDefault(rep.From, "nothing installed"), rep.To, rep.Bundle, rep.Catalog)
	b.WriteString("Server-side apply dry run, field manager \"ferry\", force:\n")
	marks := map[string]string{actionCreate: "+", actionChange: "~", actionUnchanged: "=", actionDelete: "-", actionKeep: "=", actionReplace: "!", actionConflict: "!", actionError: "!"}
	counts := map[string]int{}
	for _, o := range rep.Objects {
		counts[o.Action]++
		fmt.Fprintf(&b, "%s %s (%s", marks[o.Action], o.Object, o.Action)
		if o.Message != "" {
			fmt.Fprintf(&b, ": %s", o.Message)
		}
		b.WriteString(")\n")
		if o.Diff != "" {
			for _, line := range strings.SplitAfter(strings.TrimRight(o.Diff, "\n"), "\n") {
				b.WriteString("    " + line)
			}
			b.WriteString("\n")
		}
	}
	var sum []string
	for _, a := range []string{actionCreate, actionChange, actionReplace, actionDelete, actionUnchanged, actionKeep, actionConflict, actionError} {
		if counts[a] > 0 {
			sum = append(sum, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	fmt.Fprintf(&b, "Objects: %s\n", strings.Join(sum, ", "))
	b.WriteString("\nCRD upgrade safety:\n")
	if len(rep.CRDSafety) == 0 {
		b.WriteString("  no installed CRD changes\n")
	}
	for _, v := range rep.CRDSafety {
		verdict := "safe"
		switch {
		case v.Error != "":
			verdict = "not checked: " + v.Error
		case v.Blocked:
			verdict = "BLOCKED: the installer will not upgrade"
		case len(v.Findings) > 0:
			verdict = "unsafe changes, not blocking under policy " + v.Policy
		}
		fmt.Fprintf(&b, "  CRD %s (policy %s, %d custom resources checked): %s\n", v.CRD, v.Policy, v.ObjectsChecked, verdict)
		for _, f := range v.Findings {
			fmt.Fprintf(&b, "    - %s\n", f)
		}
	}
	b.WriteString("\nRBAC:\n")
	if len(rep.RBAC.Added)+len(rep.RBAC.Removed) == 0 {
		b.WriteString("  no change\n")
	}
	for _, p := range rep.RBAC.Added {
		fmt.Fprintf(&b, "  + %s\n", p)
	}
	for _, p := range rep.RBAC.Removed {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func refKey(r v1alpha1.ObjectReference) string {
	return r.Group + "|" + r.Kind + "|" + r.Namespace + "|" + r.Name
}

func apiVersion(r v1alpha1.ObjectReference) string {
	if r.Group == "" {
		return r.Version
	}
	return r.Group + "/" + r.Version
}

func isCRD(r v1alpha1.ObjectReference) bool {
	return r.Group == "apiextensions.k8s.io" && r.Kind == "CustomResourceDefinition"
}

func isRole(r v1alpha1.ObjectReference) bool {
	return r.Group == rbacv1.GroupName && (r.Kind == "Role" || r.Kind == "ClusterRole")
}

// describe names an object as the installer's messages do.
func describe(r v1alpha1.ObjectReference) string {
	kind := r.Kind
	if isCRD(r) {
		kind = "CRD"
	}
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}
