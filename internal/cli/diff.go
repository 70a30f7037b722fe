package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/crdsafety"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/livediff"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// DefaultDiffTimeout bounds diff.
const DefaultDiffTimeout = 5 * time.Minute

// Actions of an object in a diff.
const (
	actionCreate    = livediff.ActionCreate
	actionChange    = livediff.ActionChange
	actionUnchanged = livediff.ActionUnchanged
	actionDelete    = livediff.ActionDelete
	actionKeep      = livediff.ActionKeep
	actionReplace   = livediff.ActionReplace
	actionConflict  = livediff.ActionConflict
	actionError     = livediff.ActionError
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
type ObjectDiff = livediff.ObjectDiff

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
type RBACDelta = livediff.RBACDelta

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

	res, err := livediff.Compare(ctx, c, c, livediff.Input{Objects: r.Objects, Inventory: sub.Status.Inventory, Owner: owner, Package: sub.Spec.Package})
	if err != nil {
		return nil, err
	}
	rep.Objects, rep.RBAC = res.Objects, res.RBAC
	for _, crd := range res.CRDs {
		v, err := crdVerdict(ctx, c, crd.Live, crd.Target, sub.Spec.CRDUpgradeSafety)
		if err != nil {
			return nil, err
		}
		rep.CRDSafety = append(rep.CRDSafety, v)
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
	return livediff.RBAC(live, target)
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
