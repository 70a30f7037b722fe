package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/kinds"
)

// The installer asks the API server what a Subscription's ServiceAccount
// may do, and reads the Roles and ClusterRoles a binding refers to.
//
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Defaults of a Checker.
const (
	// DefaultMaxChecks bounds the distinct SubjectAccessReviews of one plan.
	DefaultMaxChecks = 4096
	// DefaultParallelChecks is how many SubjectAccessReviews are in flight
	// at once.
	DefaultParallelChecks = 8
	// MaxMessage bounds the list of missing permissions in
	// PermissionsMissingError.Error, in bytes; the error keeps them all.
	MaxMessage = 2048
)

const groupRBAC = rbacv1.GroupName

// Plan is what an install, upgrade or uninstall would change.
type Plan struct {
	// Apply are the objects written with server-side apply: the API server
	// authorizes create (for an object that does not exist yet) and patch.
	Apply []*unstructured.Unstructured
	// Delete are the objects deleted: pruned by an upgrade, or uninstalled.
	Delete []v1alpha1.ObjectReference
}

// Permission is one request attribute set a SubjectAccessReview checks.
type Permission struct {
	// Verb such as create, patch, delete, escalate or bind.
	Verb string
	// Group of the resource; "" is the core group.
	Group string
	// Resource is the plural resource, with "/subresource" when one is
	// checked.
	Resource string
	// Namespace; "" means cluster-wide.
	Namespace string
	// Name of the object; "" means any.
	Name string
	// NonResourceURL is set, instead of the fields above but Verb, for a
	// rule on a path.
	NonResourceURL string
}

func (p Permission) String() string {
	if p.NonResourceURL != "" {
		return fmt.Sprintf("verb=%s nonResourceURL=%s", p.Verb, p.NonResourceURL)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "verb=%s group=%q resource=%s", p.Verb, p.Group, p.Resource)
	if p.Namespace != "" {
		fmt.Fprintf(&b, " namespace=%s", p.Namespace)
	} else {
		b.WriteString(" (cluster-wide)")
	}
	if p.Name != "" {
		fmt.Fprintf(&b, " name=%s", p.Name)
	}
	return b.String()
}

func (p Permission) attributes() authorizationv1.SubjectAccessReviewSpec {
	if p.NonResourceURL != "" {
		return authorizationv1.SubjectAccessReviewSpec{NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: p.NonResourceURL, Verb: p.Verb}}
	}
	res, sub, _ := strings.Cut(p.Resource, "/")
	return authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
		Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: res, Subresource: sub, Name: p.Name,
	}}
}

// Missing is a permission the ServiceAccount lacks, and what needs it.
type Missing struct {
	Permission
	// For says which change needs it, e.g. "to apply Deployment ops/web".
	For string
}

func (m Missing) String() string { return m.Permission.String() + " (" + m.For + ")" }

// PermissionsMissingError lists every permission a ServiceAccount lacks for
// a plan. Nothing of the plan should be changed.
type PermissionsMissingError struct {
	// Identity is the ServiceAccount checked.
	Identity Identity
	// Missing is every missing permission, in a stable order.
	Missing []Missing
}

func (e *PermissionsMissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s lacks %d permission(s): ", e.Identity, len(e.Missing))
	start := b.Len()
	for i, m := range e.Missing {
		line := m.String()
		if b.Len()-start+len(line) > MaxMessage {
			fmt.Fprintf(&b, "; and %d more", len(e.Missing)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(line)
	}
	return b.String()
}

// Checker checks plans with SubjectAccessReviews made by the installer.
type Checker struct {
	client   client.Client
	mapper   meta.RESTMapper
	max      int
	parallel int

	allowedTTL time.Duration
	now        func() time.Time
	remembered *allowedMemory
}

// CheckerOption refines NewChecker.
type CheckerOption func(*Checker)

// WithMaxChecks bounds the distinct SubjectAccessReviews of one plan; a plan
// that needs more is refused with an error.
func WithMaxChecks(n int) CheckerOption { return func(c *Checker) { c.max = max(n, 1) } }

// WithParallelChecks sets how many SubjectAccessReviews are in flight at once.
func WithParallelChecks(n int) CheckerOption { return func(c *Checker) { c.parallel = max(n, 1) } }

// NewChecker returns a Checker that creates SubjectAccessReviews and reads
// referenced roles with c, the installer's own client, and maps kinds to
// resources with c's RESTMapper.
func NewChecker(c client.Client, opts ...CheckerOption) *Checker {
	ch := &Checker{client: c, mapper: c.RESTMapper(), max: DefaultMaxChecks, parallel: DefaultParallelChecks, allowedTTL: DefaultAllowedTTL, now: time.Now}
	for _, o := range opts {
		o(ch)
	}
	ch.remembered = newAllowedMemory(ch.allowedTTL, ch.now, DefaultMaxAllowed)
	return ch
}

// requirement is one change of the plan and the permissions it needs: all
// of need, or, when alt is set, either need or every permission of alt.
type requirement struct {
	what string
	need []Permission
	// alt is the escalation check's other way: holding every rule granted.
	alt    []Permission
	hasAlt bool
}

// Check returns *PermissionsMissingError when id may not make every change
// of plan, nil when it may, and another error when the check itself failed.
func (c *Checker) Check(ctx context.Context, id Identity, plan Plan) error {
	reqs, err := c.requirements(ctx, plan)
	if err != nil {
		return err
	}
	// The bound counts every permission the plan may need reviewed, the
	// other ways of the escalation checks included, whether or not they
	// are asked: a plan is refused or not whatever the identity holds.
	var perms, alts []Permission
	seen := map[Permission]bool{}
	add := func(dst *[]Permission, ps []Permission) {
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				*dst = append(*dst, p)
			}
		}
	}
	for _, r := range reqs {
		add(&perms, r.need)
	}
	for _, r := range reqs {
		add(&alts, r.alt)
	}
	if n := len(perms) + len(alts); n > c.max {
		return fmt.Errorf("tenancy: checking the permissions of %s needs %d access reviews, more than the %d allowed; the roles the operator ships list too many rules", id, n, c.max)
	}
	allowed, err := c.review(ctx, id, perms)
	if err != nil {
		return err
	}
	// The other way of an escalation check (holding every rule a role
	// grants) is asked only where its first way (escalate, bind) is
	// refused: a ServiceAccount that may escalate and bind, as
	// examples/tenancy's, is asked a few reviews per install instead of
	// one per verb and resource of every rule.
	var more []Permission
	asked := map[Permission]bool{}
	for _, r := range reqs {
		if !r.hasAlt || all(allowed, r.need) {
			continue
		}
		for _, p := range r.alt {
			if _, done := allowed[p]; !done && !asked[p] {
				asked[p] = true
				more = append(more, p)
			}
		}
	}
	if len(more) > 0 {
		extra, err := c.review(ctx, id, more)
		if err != nil {
			return err
		}
		for p, ok := range extra {
			allowed[p] = ok
		}
	}
	var missing []Missing
	have := map[Missing]bool{}
	report := func(ps []Permission, what string) {
		for _, p := range ps {
			m := Missing{Permission: p, For: what}
			if !allowed[p] && !have[m] {
				have[m] = true
				missing = append(missing, m)
			}
		}
	}
	// The writes themselves first, then the rules the escalation checks
	// want: the first lines of a long list say which objects are refused.
	for _, r := range reqs {
		if !r.hasAlt {
			report(r.need, r.what)
		}
	}
	for _, r := range reqs {
		if !r.hasAlt || all(allowed, r.need) || all(allowed, r.alt) {
			continue
		}
		report(r.alt, r.what+", or "+strings.Join(names(r.need), " and "))
	}
	if len(missing) == 0 {
		return nil
	}
	return &PermissionsMissingError{Identity: id, Missing: missing}
}

func all(allowed map[Permission]bool, ps []Permission) bool {
	for _, p := range ps {
		if !allowed[p] {
			return false
		}
	}
	return true
}

func names(ps []Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// review asks the API server about every permission, a few at a time, but
// for those it allowed id less than the allowed TTL ago.
func (c *Checker) review(ctx context.Context, id Identity, perms []Permission) (map[Permission]bool, error) {
	var (
		mu      sync.Mutex
		allowed = make(map[Permission]bool, len(perms))
		errs    []error
		wg      sync.WaitGroup
		slots   = make(chan struct{}, c.parallel)
	)
	for _, p := range perms {
		if c.remembered.allowed(id, p) {
			mu.Lock()
			allowed[p] = true
			mu.Unlock()
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			sar := &authorizationv1.SubjectAccessReview{Spec: p.attributes()}
			sar.Spec.User = id.Username()
			sar.Spec.Groups = id.Groups()
			err := c.client.Create(ctx, sar)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if len(errs) < 3 {
					errs = append(errs, fmt.Errorf("tenancy: access review of %s for %s: %w", p, id, err))
				}
				return
			}
			allowed[p] = sar.Status.Allowed
			if sar.Status.Allowed {
				c.remembered.remember(id, p)
			}
		})
	}
	wg.Wait()
	return allowed, errors.Join(errs...)
}

// requirements lists what each change of plan needs.
func (c *Checker) requirements(ctx context.Context, plan Plan) ([]requirement, error) {
	var reqs []requirement
	for _, o := range plan.Apply {
		gvk := o.GroupVersionKind()
		res, err := c.resource(gvk)
		if err != nil {
			return nil, err
		}
		what := "to apply " + describe(gvk.Kind, o.GetNamespace(), o.GetName())
		perm := func(verb string) Permission {
			return Permission{Verb: verb, Group: gvk.Group, Resource: res, Namespace: o.GetNamespace(), Name: o.GetName()}
		}
		reqs = append(reqs, requirement{what: what, need: []Permission{perm("create"), perm("patch")}})
		if gvk.Group != groupRBAC {
			continue
		}
		switch gvk.Kind {
		case "Role", "ClusterRole":
			r, err := roleRequirement(o, perm("escalate"), what)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, r)
		case "RoleBinding", "ClusterRoleBinding":
			r, err := c.bindingRequirement(ctx, o, plan, what)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, r)
		}
	}
	for _, ref := range plan.Delete {
		gvk := schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind}
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			// The kind is no longer served: there is nothing to delete.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tenancy: the resource of %s: %w", gvk, err)
		}
		res := m.Resource.Resource
		reqs = append(reqs, requirement{
			what: "to delete " + describe(ref.Kind, ref.Namespace, ref.Name),
			need: []Permission{{Verb: "delete", Group: ref.Group, Resource: res, Namespace: ref.Namespace, Name: ref.Name}},
		})
	}
	return reqs, nil
}

// roleRequirement: writing a Role or ClusterRole needs escalate on it, or
// every rule it grants (where it grants them). A ClusterRole with an
// aggregationRule always needs escalate.
func roleRequirement(o *unstructured.Unstructured, escalate Permission, what string) (requirement, error) {
	r := requirement{what: what + " (the API server's escalation check)", need: []Permission{escalate}}
	if _, agg, _ := unstructured.NestedFieldNoCopy(o.Object, "aggregationRule"); agg {
		return r, nil
	}
	rules, err := rulesOf(o)
	if err != nil {
		return r, err
	}
	r.alt, r.hasAlt = expand(rules, o.GetNamespace(), o.GetKind() == "ClusterRole"), true
	return r, nil
}

// bindingRequirement: writing a binding needs bind on the role it refers to,
// or every rule of that role where the binding grants it. The role is taken
// from the plan, else read from the cluster; one that cannot be read needs
// bind.
func (c *Checker) bindingRequirement(ctx context.Context, o *unstructured.Unstructured, plan Plan, what string) (requirement, error) {
	var ref rbacv1.RoleRef
	raw, _, _ := unstructured.NestedMap(o.Object, "roleRef")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ref); err != nil {
		return requirement{}, fmt.Errorf("tenancy: %s: roleRef: %w", describe(o.GetKind(), o.GetNamespace(), o.GetName()), err)
	}
	roleNS := ""
	resource := "clusterroles"
	if ref.Kind == "Role" {
		roleNS, resource = o.GetNamespace(), "roles"
	}
	r := requirement{
		what: what + " (the API server's escalation check)",
		// A RoleBinding's bind check is made in its namespace, whatever it refers to.
		need: []Permission{{Verb: "bind", Group: groupRBAC, Resource: resource, Namespace: o.GetNamespace(), Name: ref.Name}},
	}
	role, err := c.referencedRole(ctx, plan, ref.Kind, roleNS, ref.Name)
	if err != nil || role == nil {
		return r, err
	}
	rules, err := rulesOf(role)
	if err != nil {
		return r, err
	}
	r.alt, r.hasAlt = expand(rules, o.GetNamespace(), o.GetKind() == "ClusterRoleBinding"), true
	return r, nil
}

func (c *Checker) referencedRole(ctx context.Context, plan Plan, kind, ns, name string) (*unstructured.Unstructured, error) {
	for _, o := range plan.Apply {
		if o.GroupVersionKind().Group == groupRBAC && o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o, nil
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(rbacv1.SchemeGroupVersion.WithKind(kind))
	err := c.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tenancy: reading %s: %w", describe(kind, ns, name), err)
	}
	return u, nil
}

func rulesOf(o *unstructured.Unstructured) ([]rbacv1.PolicyRule, error) {
	raw, _, _ := unstructured.NestedSlice(o.Object, "rules")
	rules := make([]rbacv1.PolicyRule, 0, len(raw))
	for i, x := range raw {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("tenancy: %s: rules[%d] is not an object", describe(o.GetKind(), o.GetNamespace(), o.GetName()), i)
		}
		var r rbacv1.PolicyRule
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &r); err != nil {
			return nil, fmt.Errorf("tenancy: %s: rules[%d]: %w", describe(o.GetKind(), o.GetNamespace(), o.GetName()), i, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// expand turns rules into single permissions, in ns unless cluster (then
// cluster-wide, where non-resource URLs count too).
func expand(rules []rbacv1.PolicyRule, ns string, cluster bool) []Permission {
	if cluster {
		ns = ""
	}
	var out []Permission
	for _, r := range rules {
		for _, verb := range r.Verbs {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					if len(r.ResourceNames) == 0 {
						out = append(out, Permission{Verb: verb, Group: g, Resource: res, Namespace: ns})
					}
					for _, n := range r.ResourceNames {
						out = append(out, Permission{Verb: verb, Group: g, Resource: res, Namespace: ns, Name: n})
					}
				}
			}
			if cluster {
				for _, u := range r.NonResourceURLs {
					out = append(out, Permission{Verb: verb, NonResourceURL: u})
				}
			}
		}
	}
	return slices.Compact(out)
}

// resource maps a kind to its plural resource: from the list of kinds Ferry
// installs, else from the API server's discovery, else, for a kind not
// served yet, the conventional plural.
func (c *Checker) resource(gvk schema.GroupVersionKind) (string, error) {
	if k, ok := kinds.Lookup(gvk.GroupKind()); ok {
		return k.Resource, nil
	}
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil {
		return m.Resource.Resource, nil
	}
	if meta.IsNoMatchError(err) {
		plural, _ := meta.UnsafeGuessKindToResource(gvk)
		return plural.Resource, nil
	}
	return "", fmt.Errorf("tenancy: the resource of %s: %w", gvk, err)
}

func describe(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}
