package subscription

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/resolver"
)

// deprecationFacts is what the catalog says is deprecated of the
// Subscription's package, the channel it follows and its installed bundle.
// A nil message means not deprecated.
type deprecationFacts struct {
	catalog string
	pkg     *catalog.Deprecation
	// channel is the channel followed: spec.channel, else the one the
	// resolution chose, else the package's default channel.
	channel    string
	channelDep *catalog.Deprecation
	// bundle is status.installedBundle; empty when nothing is installed.
	bundle    string
	bundleDep *catalog.Deprecation
}

// observeDeprecation looks up, in the Subscription's catalog, whether its
// package, channel and installed bundle are deprecated. The catalog is
// spec.catalog when set; otherwise the one the installed version came from,
// else the one the resolution chose, and when that one has no such package
// (or is gone), the first in resolution order that has it. It returns nil
// when there is no such catalog: there is nothing to say then, and the
// conditions are left as they are.
func observeDeprecation(sub *v1alpha1.Subscription, res *resolver.Decision, snaps []resolver.Snapshot) *deprecationFacts {
	name := sub.Spec.Catalog
	if name == "" {
		name = sub.Status.Catalog
	}
	if name == "" && res != nil && res.Target != nil {
		name = res.Target.Catalog
	}
	var cat, first *catalog.Catalog
	firstName := ""
	for _, s := range snaps {
		if s.Catalog == nil || s.Catalog.Package(sub.Spec.Package) == nil {
			continue
		}
		if first == nil {
			first, firstName = s.Catalog, s.Name
		}
		if s.Name == name {
			cat = s.Catalog
			break
		}
	}
	if cat == nil && sub.Spec.Catalog == "" {
		// The catalog the installed version came from may be gone.
		name, cat = firstName, first
	}
	if cat == nil {
		return nil
	}
	p := cat.Package(sub.Spec.Package)
	f := &deprecationFacts{catalog: name, pkg: p.Deprecation, channel: sub.Spec.Channel, bundle: sub.Status.InstalledBundle}
	if f.channel == "" && res != nil && res.Target != nil {
		f.channel = res.Target.Channel
	}
	if f.channel == "" {
		f.channel = p.DefaultChannel
	}
	if i := slices.IndexFunc(p.Channels, func(c *catalog.Channel) bool { return c.Name == f.channel }); i >= 0 {
		f.channelDep = p.Channels[i].Deprecation
	}
	if f.bundle != "" {
		if b := cat.Bundle(p.Name, f.bundle); b != nil {
			f.bundleDep = b.Deprecation
		}
	}
	return f
}

// summarizeDeprecation sets PackageDeprecated, ChannelDeprecated and
// BundleDeprecated True with the catalog's message for what is deprecated
// and removes them for what is not; Deprecated is True, with every message,
// when any of them is, and absent otherwise. Without facts (no catalog has
// the package, or it was not looked at) the conditions stay as they are.
func summarizeDeprecation(sub *v1alpha1.Subscription, f *deprecationFacts) {
	if f == nil {
		return
	}
	var all []string
	set := func(typ string, d *catalog.Deprecation, what string) {
		if d == nil {
			meta.RemoveStatusCondition(&sub.Status.Conditions, typ)
			return
		}
		msg := fmt.Sprintf("%s is deprecated in catalog %q: %s", what, f.catalog, d.Message)
		all = append(all, msg)
		setCondition(sub, typ, metav1.ConditionTrue, v1alpha1.ReasonDeprecated, msg)
	}
	set(v1alpha1.TypePackageDeprecated, f.pkg, "package "+sub.Spec.Package)
	set(v1alpha1.TypeChannelDeprecated, f.channelDep, fmt.Sprintf("channel %q", f.channel))
	set(v1alpha1.TypeBundleDeprecated, f.bundleDep, "installed bundle "+f.bundle)
	if len(all) == 0 {
		meta.RemoveStatusCondition(&sub.Status.Conditions, v1alpha1.TypeDeprecated)
		return
	}
	setCondition(sub, v1alpha1.TypeDeprecated, metav1.ConditionTrue, v1alpha1.ReasonDeprecated, strings.Join(all, "; "))
}

// summarizeCandidates writes status.resolution and resolutionOmitted from
// the resolution of this reconcile, only when they changed. A request the
// resolver refused clears them; without a resolution they stay as they are.
func summarizeCandidates(sub *v1alpha1.Subscription, res *resolver.Decision, resolveErr error) {
	var list []v1alpha1.ResolutionCandidate
	var omitted int32
	switch {
	case resolveErr != nil:
	case res == nil:
		return
	default:
		list = make([]v1alpha1.ResolutionCandidate, 0, len(res.Candidates))
		for _, c := range res.Candidates {
			list = append(list, v1alpha1.ResolutionCandidate{
				Catalog: c.Catalog, Bundle: c.Bundle, Version: c.Version.String(), Chosen: c.Chosen,
				Reason: string(c.Reason), Message: c.Message,
			})
		}
		omitted = int32(min(res.CandidatesOmitted, 1<<30)) //nolint:gosec // bounded above
	}
	if len(list) == 0 {
		list = nil
	}
	if !slices.Equal(sub.Status.Resolution, list) {
		sub.Status.Resolution = list
	}
	sub.Status.ResolutionOmitted = omitted
}
