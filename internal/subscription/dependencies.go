package subscription

import (
	"fmt"
	"maps"
	"slices"

	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/resolver"
)

// AnnotationNoLongerRequiredBy on a Subscription Ferry created for a
// dependency says which parent no longer needs it: the parent's label was
// removed and the Subscription is the user's to keep or delete.
const AnnotationNoLongerRequiredBy = "operators.ferry.dev/no-longer-required-by"

// childUpdate is the child Subscription Ferry created for parent (labelled
// with it) as the parent's requirement wants it now: the version range
// and required-by of want, and want's channel when the dependency's
// bundle is not in the child's channel (inChannel false). It is nil when
// child is not the parent's or is already as it should be.
func childUpdate(parent, child, want *v1alpha1.Subscription, inChannel bool) *v1alpha1.Subscription {
	if child == nil || want == nil || child.Labels[LabelParent] != parent.Name {
		return nil
	}
	out := child.DeepCopy()
	out.Spec.VersionRange = want.Spec.VersionRange
	if !inChannel && want.Spec.Channel != "" {
		out.Spec.Channel = want.Spec.Channel
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	maps.Copy(out.Annotations, want.Annotations)
	delete(out.Annotations, AnnotationNoLongerRequiredBy)
	if out.Spec.VersionRange == child.Spec.VersionRange && out.Spec.Channel == child.Spec.Channel && maps.Equal(out.Annotations, child.Annotations) {
		return nil
	}
	return out
}

// releasedChildren are the Subscriptions in list Ferry created for parent
// that none of its dependencies (by package) needs now and that required
// does not keep.
func releasedChildren(parent *v1alpha1.Subscription, list []v1alpha1.Subscription, needed []string, required func(*v1alpha1.Subscription) bool) []*v1alpha1.Subscription {
	var out []*v1alpha1.Subscription
	for i := range list {
		c := &list[i]
		if c.Labels[LabelParent] != parent.Name || c.Name == parent.Name || slices.Contains(needed, c.Spec.Package) || required(c) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// requiredBy reports whether the target bundle, as the catalogs have it,
// may need child: it requires child's package, an API child's installed
// bundle provides (or one of unknown provider), or declares a constraint.
// The resolver does not list the dependencies of a bundle already
// installed, so this is read from the bundle; when the target is not in the
// catalogs every child is kept.
func requiredBy(snaps []resolver.Snapshot, target *resolver.Target) func(*v1alpha1.Subscription) bool {
	var tb *catalog.Bundle
	for _, s := range snaps {
		if target != nil && s.Name == target.Catalog && s.Catalog != nil {
			tb = s.Catalog.Bundle(target.Package, target.Bundle)
		}
	}
	return func(child *v1alpha1.Subscription) bool {
		if tb == nil {
			return true
		}
		for _, p := range tb.Properties {
			if p.Type == "olm.constraint" || p.Type == "olm.label.required" {
				return true
			}
		}
		for _, r := range tb.RequiredPackages {
			if r.PackageName == child.Spec.Package {
				return true
			}
		}
		if len(tb.RequiredAPIs) == 0 {
			return false
		}
		var cb *catalog.Bundle
		for _, s := range snaps {
			if s.Catalog != nil && (child.Status.Catalog == "" || s.Name == child.Status.Catalog) {
				if b := s.Catalog.Bundle(child.Spec.Package, child.Status.InstalledBundle); b != nil {
					cb = b
				}
			}
		}
		if cb == nil {
			return true
		}
		for _, g := range tb.RequiredAPIs {
			if slices.Contains(cb.ProvidedAPIs, g) {
				return true
			}
		}
		return false
	}
}

// release is child without its parent's label, annotated with the parent
// that no longer needs it.
func release(parent, child *v1alpha1.Subscription) *v1alpha1.Subscription {
	out := child.DeepCopy()
	delete(out.Labels, LabelParent)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[AnnotationNoLongerRequiredBy] = parent.Name
	return out
}

// requirementUnmet says why the installed version of child does not meet
// versionRange (the range the parent's target requires), or "".
func requirementUnmet(child *v1alpha1.Subscription, versionRange string) string {
	if versionRange == "" {
		return ""
	}
	in, err := catalog.ParseRange(versionRange)
	if err != nil {
		// The resolver refused such a catalog already; nothing to wait for.
		return ""
	}
	v, err := semver.Parse(child.Status.InstalledVersion)
	if err != nil {
		return fmt.Sprintf("installed version %q, %s required", child.Status.InstalledVersion, versionRange)
	}
	if !in(v) {
		return fmt.Sprintf("%s installed, %s required", v, versionRange)
	}
	return ""
}

// bundleInChannel reports whether dep's bundle is in channel (the default
// channel when ""); true when the catalog does not have it.
func bundleInChannel(snaps []resolver.Snapshot, dep resolver.Dependency, channel string) bool {
	for _, s := range snaps {
		if s.Name != dep.Catalog || s.Catalog == nil {
			continue
		}
		p := s.Catalog.Package(dep.Package)
		b := s.Catalog.Bundle(dep.Package, dep.Bundle)
		if p == nil || b == nil {
			return true
		}
		if channel == "" {
			channel = p.DefaultChannel
		}
		return slices.Contains(b.Channels, channel)
	}
	return true
}

// awaitsApproval reports whether the resolution is a Manual upgrade not
// approved yet: nothing of it is installed, its dependencies included.
func awaitsApproval(f *facts) bool {
	d := f.resolution
	installed := f.sub.Status.InstalledBundle
	return d != nil && d.Target != nil && d.NeedsApproval && installed != "" && installed != d.Target.Bundle && downgradeFromHistory(f) == nil
}

// installedDependencies are the requirements of the target bundle met by a
// child Ferry created for parent that the resolution does not list (the
// resolver lists only what it chooses to install; a requirement an
// installed operator meets is not listed): the child still follows the
// requirement's range.
func installedDependencies(parent *v1alpha1.Subscription, snaps []resolver.Snapshot, target *resolver.Target, children map[string]*v1alpha1.Subscription, listed []string) []dependencyFact {
	if target == nil {
		return nil
	}
	var out []dependencyFact
	for _, s := range snaps {
		if s.Name != target.Catalog || s.Catalog == nil {
			continue
		}
		tb := s.Catalog.Bundle(target.Package, target.Bundle)
		if tb == nil {
			return nil
		}
		for _, req := range tb.RequiredPackages {
			child := children[req.PackageName]
			if child == nil || slices.Contains(listed, req.PackageName) || child.Labels[LabelParent] != parent.Name {
				continue
			}
			dep := resolver.Dependency{
				Catalog: child.Spec.Catalog, Package: req.PackageName, Bundle: child.Status.InstalledBundle, Namespace: parent.Namespace,
				RequiredBy: fmt.Sprintf("%s %s requires %s %s", target.Package, target.Version, req.PackageName, req.VersionRange),
			}
			want := child.DeepCopy()
			want.Spec.VersionRange = req.VersionRange
			want.Annotations = map[string]string{AnnotationRequiredBy: dep.RequiredBy}
			out = append(out, dependencyFact{dep: dep, child: child, versionRange: req.VersionRange, update: childUpdate(parent, child, want, true)})
		}
		return out
	}
	return nil
}
