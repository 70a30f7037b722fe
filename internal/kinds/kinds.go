package kinds

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Rank orders kinds for applying: lower ranks are applied first and removed
// last.
type Rank int

// The apply order: CRDs, so that custom resources of them can follow, then
// the ServiceAccounts RBAC binds, roles before their bindings, everything
// else, workloads when everything they use exists, and webhook
// configurations last, once the workload that serves them is available (a
// webhook that points at nothing would refuse every request it matches).
// Uninstalling goes the other way: webhook configurations first.
const (
	RankCRD Rank = iota
	RankServiceAccount
	RankRole
	RankBinding
	RankOther
	RankWorkload
	RankWebhook
)

// Kind is one kind of object Ferry installs.
type Kind struct {
	// Group is the API group; "" for the core group.
	Group string
	// Version is the version the installer watches the kind at when
	// discovery does not name a preferred one. Objects are applied at the
	// version their manifest names.
	Version string
	// Kind is the kind, e.g. "ServiceAccount".
	Kind string
	// Resource is the plural resource name, e.g. "serviceaccounts".
	Resource string
	// Namespaced is true for namespaced kinds, which are installed in the
	// install namespace; cluster-scoped ones in none.
	Namespaced bool
	// Rank is the kind's place in the apply order.
	Rank Rank
	// Shippable is true when a bundle may ship objects of the kind besides
	// its CSV. Deployments are not: they come from the CSV's install
	// strategy; nor are webhook configurations: Ferry generates them from
	// the CSV's webhookdefinitions.
	Shippable bool
	// Optional is true when the kind's API is served only once an add-on
	// installs its CRD (the Prometheus operator, the vertical pod
	// autoscaler). The installer starts without it and watches the kind
	// once it is served.
	Optional bool
	// ExtraVerbs are verbs the installer needs on the kind besides Verbs.
	ExtraVerbs []string
}

// Verbs are the verbs the installer needs on every kind it installs: get,
// list and watch for the label-selected watches that correct drift, for
// reading who owns an object and for health. It writes none of them: every
// write is made as the Subscription's ServiceAccount (internal/tenancy),
// which needs create and patch for server-side apply (a PATCH the API
// server also authorizes as create when the object does not exist yet) and
// delete for pruning and uninstalling (examples/tenancy grants them).
// Nothing is ever updated with PUT.
var Verbs = []string{"get", "list", "watch"}

// GroupKind returns the kind's group and kind.
func (k Kind) GroupKind() schema.GroupKind {
	return schema.GroupKind{Group: k.Group, Kind: k.Kind}
}

// GroupVersionKind returns the kind at Version.
func (k Kind) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
}

// GroupResource returns the kind's group and resource.
func (k Kind) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.Group, Resource: k.Resource}
}

// NeededVerbs returns Verbs and ExtraVerbs, sorted.
func (k Kind) NeededVerbs() []string {
	out := slices.Concat(Verbs, k.ExtraVerbs)
	slices.Sort(out)
	return slices.Compact(out)
}

// String names the kind as "Kind.group", or "Kind" in the core group.
func (k Kind) String() string {
	if k.Group == "" {
		return k.Kind
	}
	return k.Kind + "." + k.Group
}

// Group names used more than once.
const (
	GroupAPIExtensions = "apiextensions.k8s.io"
	GroupRBAC          = "rbac.authorization.k8s.io"
	GroupApps          = "apps"
	GroupMonitoring    = "monitoring.coreos.com"
	GroupAutoscaling   = "autoscaling.k8s.io"
	GroupAdmission     = "admissionregistration.k8s.io"
)

// Permissions on every kind of the list below, as Verbs and ExtraVerbs say.
// The test of this package fails when config/rbac/role.yaml, generated from
// these markers, does not grant exactly what the list needs.
//
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts;services;configmaps;secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings;clusterroles;clusterrolebindings,verbs=get;list;watch
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors;prometheusrules,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch
// +kubebuilder:rbac:groups=scheduling.k8s.io,resources=priorityclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=autoscaling.k8s.io,resources=verticalpodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch
//
// The installer holds no escalate and no bind: the API server checks the
// Roles, ClusterRoles and bindings an operator ships against the rights of
// the Subscription's ServiceAccount, which writes them.

// list is every kind Ferry installs, in apply order.
var list = []Kind{
	{Group: GroupAPIExtensions, Version: "v1", Kind: "CustomResourceDefinition", Resource: "customresourcedefinitions", Rank: RankCRD, Shippable: true},
	{Version: "v1", Kind: "ServiceAccount", Resource: "serviceaccounts", Namespaced: true, Rank: RankServiceAccount, Shippable: true},
	{Group: GroupRBAC, Version: "v1", Kind: "ClusterRole", Resource: "clusterroles", Rank: RankRole, Shippable: true},
	{Group: GroupRBAC, Version: "v1", Kind: "Role", Resource: "roles", Namespaced: true, Rank: RankRole, Shippable: true},
	{Group: GroupRBAC, Version: "v1", Kind: "ClusterRoleBinding", Resource: "clusterrolebindings", Rank: RankBinding, Shippable: true},
	{Group: GroupRBAC, Version: "v1", Kind: "RoleBinding", Resource: "rolebindings", Namespaced: true, Rank: RankBinding, Shippable: true},
	{Version: "v1", Kind: "Service", Resource: "services", Namespaced: true, Rank: RankOther, Shippable: true},
	{Version: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespaced: true, Rank: RankOther, Shippable: true},
	{Version: "v1", Kind: "Secret", Resource: "secrets", Namespaced: true, Rank: RankOther, Shippable: true},
	{Group: GroupMonitoring, Version: "v1", Kind: "ServiceMonitor", Resource: "servicemonitors", Namespaced: true, Rank: RankOther, Shippable: true, Optional: true},
	{Group: GroupMonitoring, Version: "v1", Kind: "PrometheusRule", Resource: "prometheusrules", Namespaced: true, Rank: RankOther, Shippable: true, Optional: true},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget", Resource: "poddisruptionbudgets", Namespaced: true, Rank: RankOther, Shippable: true},
	{Group: "scheduling.k8s.io", Version: "v1", Kind: "PriorityClass", Resource: "priorityclasses", Rank: RankOther, Shippable: true},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy", Resource: "networkpolicies", Namespaced: true, Rank: RankOther, Shippable: true},
	{Group: GroupAutoscaling, Version: "v1", Kind: "VerticalPodAutoscaler", Resource: "verticalpodautoscalers", Namespaced: true, Rank: RankOther, Shippable: true, Optional: true},
	{Group: GroupApps, Version: "v1", Kind: "Deployment", Resource: "deployments", Namespaced: true, Rank: RankWorkload},
	{Group: GroupAdmission, Version: "v1", Kind: "MutatingWebhookConfiguration", Resource: "mutatingwebhookconfigurations", Rank: RankWebhook},
	{Group: GroupAdmission, Version: "v1", Kind: "ValidatingWebhookConfiguration", Resource: "validatingwebhookconfigurations", Rank: RankWebhook},
}

var byGroupKind = func() map[schema.GroupKind]int {
	m := make(map[schema.GroupKind]int, len(list))
	for i, k := range list {
		m[k.GroupKind()] = i
	}
	return m
}()

// All returns every kind Ferry installs, in apply order. The caller may
// change the returned slice.
func All() []Kind {
	out := make([]Kind, len(list))
	for i, k := range list {
		k.ExtraVerbs = slices.Clone(k.ExtraVerbs)
		out[i] = k
	}
	return out
}

// Lookup returns the kind of gk, and false when Ferry does not install it.
func Lookup(gk schema.GroupKind) (Kind, bool) {
	i, ok := byGroupKind[gk]
	if !ok {
		return Kind{}, false
	}
	k := list[i]
	k.ExtraVerbs = slices.Clone(k.ExtraVerbs)
	return k, true
}

// RankOf returns the apply rank of gk; kinds Ferry does not install rank
// with RankOther.
func RankOf(gk schema.GroupKind) Rank {
	if i, ok := byGroupKind[gk]; ok {
		return list[i].Rank
	}
	return RankOther
}

// ShippableNames names the kinds a bundle may ship, in apply order, for
// messages: "CustomResourceDefinition, ServiceAccount, ... and
// VerticalPodAutoscaler".
func ShippableNames() string {
	var names []string
	for _, k := range list {
		if k.Shippable {
			names = append(names, k.Kind)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
