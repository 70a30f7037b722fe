//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/corpus"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/subscription"
	"github.com/ferrydev/ferry/internal/testenv"
	"github.com/ferrydev/ferry/test/e2e/framework"
)

// communityOperator is a package of the community catalog that
// TestCommunityOperators installs from its default channel, and what the
// installed operator must look like. docs/testing.md says why each is there.
type communityOperator struct {
	// pkg is the package; the Subscription is named after it.
	pkg string
	// bundle is the default channel head, the bundle that installs.
	bundle string
	// mode is the install mode the Subscription asks for.
	mode v1alpha1.InstallMode
	// tenant is the RBAC its ServiceAccount gets from examples/tenancy.
	tenant testenv.TenantScope
	// crds is the number of CRDs the bundle ships.
	crds int
	// deployments is the number of Deployments the operator runs, and
	// replicas their replicas in all.
	deployments int
	replicas    int32
	// dependencies are the bundles, by package, the resolver installs
	// first as child Subscriptions.
	dependencies map[string]string
	// validating and mutating are the webhook configurations Ferry
	// generates from spec.webhookdefinitions, converted the CRDs its
	// conversion webhook converts.
	validating, mutating, converted int
}

// communityOperators are chosen for their shapes (docs/testing.md, "Real
// operators"): each installs per hack/coverage-catalog, runs on the kwok
// node, and shares no cluster-scoped object with another. The one with
// dependencies comes first: its chain (the dependencies, then itself) is
// the longest.
var communityOperators = []communityOperator{
	// Dependencies by API (olm.gvk.required): Camel K's Integration and
	// Strimzi's Kafka, KafkaTopic and KafkaUser; 2 MB of their CRDs.
	{pkg: "mercury-operator", bundle: "mercury-operator.1.0.1", mode: v1alpha1.InstallModeAllNamespaces, tenant: testenv.ClusterTenant, crds: 2, deployments: 1, replicas: 1,
		dependencies: map[string]string{"camel-k": "camel-k-operator.v2.10.1", "strimzi-kafka-operator": "strimzi-cluster-operator.v0.51.0"}},
	// The most CRDs of the catalog that install (44); a conversion
	// webhook for 9 of them and 4 validating webhooks; AllNamespaces only.
	{pkg: "azure-service-operator", bundle: "azure-service-operator.v1.0.59040", mode: v1alpha1.InstallModeAllNamespaces, tenant: testenv.ClusterTenant, crds: 44, deployments: 1, replicas: 1,
		validating: 4, converted: 9},
	// 3 validating and 3 mutating webhooks.
	{pkg: "registry-operator", bundle: "registry-operator.v0.3.0", mode: v1alpha1.InstallModeAllNamespaces, tenant: testenv.ClusterTenant, crds: 3, deployments: 1, replicas: 1,
		validating: 3, mutating: 3},
	// AllNamespaces, a 395 KiB ClusterServiceVersion.
	{pkg: "nsm-operator", bundle: "nsm-operator.v1.8.0", mode: v1alpha1.InstallModeAllNamespaces, tenant: testenv.ClusterTenant, crds: 3, deployments: 1, replicas: 1},
	// OwnNamespace (it has no AllNamespaces), the largest
	// ClusterServiceVersion of the catalog (496 KiB).
	{pkg: "ember-csi-community-operator", bundle: "ember-csi-community-operator.v0.9.9", mode: v1alpha1.InstallModeOwnNamespace, tenant: testenv.ClusterTenant, crds: 1, deployments: 1, replicas: 1},
	// OwnNamespace only, no cluster permissions: the namespace tenant
	// without cluster-tenant.yaml installs it.
	{pkg: "etcd", bundle: "etcdoperator.v0.9.4", mode: v1alpha1.InstallModeOwnNamespace, tenant: testenv.NamespaceTenant, crds: 3, deployments: 1, replicas: 1},
	// OwnNamespace only, with clusterPermissions and a shipped
	// ClusterRole, Role and Service.
	{pkg: "sonar-operator", bundle: "sonar-operator.v3.3.0", mode: v1alpha1.InstallModeOwnNamespace, tenant: testenv.ClusterTenant, crds: 6, deployments: 1, replicas: 1},
	// AllNamespaces only, two Deployments.
	{pkg: "k8gb", bundle: "k8gb.v0.11.4", mode: v1alpha1.InstallModeAllNamespaces, tenant: testenv.ClusterTenant, crds: 2, deployments: 2, replicas: 2},
	// Ships its own ServiceAccount, Role, RoleBinding, ClusterRole,
	// ConfigMap and Service besides the CSV's permissions.
	{pkg: "nlp-server", bundle: "nlp-server.v0.8.6", mode: v1alpha1.InstallModeAllNamespaces, tenant: testenv.ClusterTenant, crds: 1, deployments: 1, replicas: 1},
	// A Deployment of two replicas.
	{pkg: "fqdn-egress-operator", bundle: "fqdn-egress-operator.v1.0.6", mode: v1alpha1.InstallModeAllNamespaces, tenant: testenv.ClusterTenant, crds: 1, deployments: 1, replicas: 2},
}

// communityCatalog is the community catalog of the shared corpus, unpacked
// once into the cache; the test is skipped when the corpus is absent.
func communityCatalog(t *testing.T) string {
	t.Helper()
	start := time.Now()
	dir := corpus.ForTest(t, f.ModuleRoot, corpus.Community)
	t.Logf("community catalog in %s (%s)", dir, time.Since(start).Round(time.Millisecond))
	return dir
}

// startCommunity starts catalogd as deployed serving catalogDir, the
// installer as deployed, and a CatalogSource for catalogd, and waits until
// the installer is connected to catalogd.
func startCommunity(t *testing.T, catalogDir string) *installerEnv {
	t.Helper()
	f.Deployed(t)
	addr := freePort(t)
	env := &installerEnv{
		client: ferryClient(t), catalogDir: catalogDir, address: addr,
		binary: f.BuildBinary(t, "./cmd/installer"), catalogd: f.BuildBinary(t, "./cmd/catalogd"),
	}
	start := time.Now()
	f.StartDeployed(t, framework.DeployedProcess{
		Name: "catalogd", Binary: env.catalogd, Deployment: framework.CatalogdDeployment,
		Rewrite: []asdeployed.CommandOption{
			asdeployed.WithFlag("--listen", addr),
			asdeployed.WithFlag("--metrics-listen", freePort(t)),
		},
		ExtraArgs: []string{"--catalog=" + catalogDir},
	})
	env.startInstallerProcess(t)
	env.catalog = fmt.Sprintf("community-%d", time.Now().UnixNano()%100000)
	cs := &v1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: env.catalog},
		Spec:       v1alpha1.CatalogSourceSpec{Address: addr, TLS: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true}},
	}
	if err := env.client.Create(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.client.Delete(context.Background(), cs) })
	waitConnected(t, env.client, env.catalog, metav1.ConditionTrue, v1alpha1.ReasonConnected, "")
	t.Logf("catalogd serves the community catalog and the installer is connected: %s after start", time.Since(start).Round(time.Millisecond))
	return env
}

// communityInstallTimeout bounds the wait for all of them: the installer
// reconciles one Subscription at a time (as deployed), so the operators
// are installed one after the other, a few seconds each.
const communityInstallTimeout = 10 * time.Minute

// TestCommunityOperators installs real operators of the community catalog,
// of different shapes, from one catalogd serving the whole catalog: each
// from its default channel into a namespace of its own with the documented
// tenant ServiceAccount, all at once. Each must become Installed and Ready
// at the channel head, its CRDs Established and its Deployments available
// on the kwok node, its dependencies installed first as child
// Subscriptions. Then all are uninstalled.
func TestCommunityOperators(t *testing.T) {
	catalogDir := communityCatalog(t)
	start := time.Now()
	env := startCommunity(t, catalogDir)
	namespaces := make([]string, len(communityOperators))
	for i, op := range communityOperators {
		namespaces[i] = subscribeCommunity(t, env, op)
	}
	// Registered after the namespaces, so it runs before they are
	// deleted, while the installer still runs to finalize.
	t.Cleanup(func() { uninstallCommunity(t, env.client, namespaces) })
	waitCommunityInstalled(t, env.client, namespaces, start)
	for i, op := range communityOperators {
		t.Run(op.pkg, func(t *testing.T) { checkCommunityOperator(t, env, namespaces[i], op) })
	}
}

// waitCommunityInstalled waits until every Subscription of communityOperators
// and of their dependencies is Installed and Ready.
func waitCommunityInstalled(t *testing.T, c client.Client, namespaces []string, start time.Time) {
	t.Helper()
	want := 0
	for _, op := range communityOperators {
		want += 1 + len(op.dependencies)
	}
	ready := map[string]time.Duration{}
	var pending []string
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, communityInstallTimeout, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		seen := 0
		var list v1alpha1.SubscriptionList // one request for all namespaces
		if err := c.List(ctx, &list); err != nil {
			return false, err
		}
		for i := range list.Items {
			s := &list.Items[i]
			if !slices.Contains(namespaces, s.Namespace) {
				continue
			}
			seen++
			key := s.Namespace + "/" + s.Name
			if !installedAndReady(s) {
				pending = append(pending, fmt.Sprintf("%s: state %q, %s", key, s.Status.State, conditionMessages(s)))
			} else if _, ok := ready[key]; !ok {
				ready[key] = time.Since(start)
				t.Logf("%s: %s Installed and Ready %s after the start of catalogd", key, s.Status.InstalledBundle, ready[key].Round(100*time.Millisecond))
			}
		}
		if seen < want {
			pending = append(pending, fmt.Sprintf("%d of %d Subscriptions exist (the dependencies' are created by the installer)", seen, want))
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		t.Fatalf("the community operators are not all Installed and Ready after %s: %v; not yet:\n%s", communityInstallTimeout, err, strings.Join(pending, "\n"))
	}
	t.Logf("%d community operators (%d Subscriptions, dependencies included) Installed and Ready %s after the start of catalogd",
		len(ready), want, time.Since(start).Round(100*time.Millisecond))
}

// conditionMessages are a Subscription's conditions that are not True, for
// a failure message.
func conditionMessages(s *v1alpha1.Subscription) string {
	var out []string
	for _, c := range s.Status.Conditions {
		if c.Status != metav1.ConditionTrue {
			out = append(out, fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message))
		}
	}
	return strings.Join(out, "; ")
}

// subscribeCommunity creates a namespace, the tenant ServiceAccount and
// the Subscription of op in it, and returns the namespace.
func subscribeCommunity(t *testing.T, env *installerEnv, op communityOperator) string {
	t.Helper()
	ns := f.CreateNamespace(t)
	sa, err := testenv.Tenant(context.Background(), f.Config, ns, op.tenant)
	if err != nil {
		t.Fatal(err)
	}
	env.subscription(t, ns, op.pkg, v1alpha1.SubscriptionSpec{
		Package: op.pkg, ServiceAccountName: sa, InstallMode: op.mode,
		CRDDeletionPolicy: v1alpha1.CRDDeletionDelete,
	})
	return ns
}

// checkCommunityOperator checks an installed operator and its dependencies.
func checkCommunityOperator(t *testing.T, env *installerEnv, ns string, op communityOperator) {
	ctx := context.Background()
	sub := &v1alpha1.Subscription{}
	if err := env.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: op.pkg}, sub); err != nil {
		t.Fatal(err)
	}
	if sub.Status.InstalledBundle != op.bundle {
		t.Errorf("installed bundle %s, want the default channel head %s", sub.Status.InstalledBundle, op.bundle)
	}
	// The CRDs of the inventory, read in one request, as Ferry labelled them.
	crds := inventoryNames(sub, "CustomResourceDefinition")
	if len(crds) != op.crds {
		t.Errorf("%d CRDs in the inventory, want %d: %v", len(crds), op.crds, crds)
	}
	var labelled apiextensionsv1.CustomResourceDefinitionList
	if err := env.client.List(ctx, &labelled, client.MatchingLabels{install.LabelOwnerNamespace: ns, install.LabelOwnerName: op.pkg}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, crd := range labelled.Items {
		names = append(names, crd.Name)
		if !crdEstablished(&crd) {
			t.Errorf("CRD %s is not Established: %+v", crd.Name, crd.Status.Conditions)
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, crds) {
		t.Errorf("CRDs labelled as installed for %s/%s: %v; the inventory lists %v", ns, op.pkg, names, crds)
	}
	targets := ""
	if op.mode == v1alpha1.InstallModeOwnNamespace {
		targets = ns
	}
	if n := assertDeploymentsAvailable(t, env.client, ns, op.pkg, op.deployments, targets); n != op.replicas {
		t.Errorf("%d replicas in all, want %d", n, op.replicas)
	}

	checkWebhooks(t, env.client, ns, op, labelled.Items)

	// Dependencies: a child Subscription each, labelled with its parent,
	// Installed and Ready at the bundle the resolver chose.
	var children v1alpha1.SubscriptionList
	if err := env.client.List(ctx, &children, client.InNamespace(ns), client.MatchingLabels{subscription.LabelParent: op.pkg}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range children.Items {
		got[c.Spec.Package] = c.Status.InstalledBundle
		if !installedAndReady(&c) {
			t.Errorf("dependency %s: state %s, conditions %+v", c.Name, c.Status.State, c.Status.Conditions)
		}
		assertDeploymentsAvailable(t, env.client, ns, c.Name, 1, targets)
	}
	if !maps.Equal(got, op.dependencies) {
		t.Errorf("dependencies installed %v, want %v", got, op.dependencies)
	}
}

// uninstallCommunity deletes the Subscriptions of the namespaces, waits
// until the installer has uninstalled them, and deletes the CRDs Ferry
// installed for them that are left (those of dependencies, kept by their
// policy), so that the tests after this one find an API server without
// them.
func uninstallCommunity(t *testing.T, c client.Client, namespaces []string) {
	t.Helper()
	ctx := context.Background()
	begin := time.Now()
	for _, ns := range namespaces {
		if err := c.DeleteAllOf(ctx, &v1alpha1.Subscription{}, client.InNamespace(ns)); err != nil {
			t.Errorf("deleting the Subscriptions of %s: %v", ns, err)
		}
	}
	poll(t, "the community operators to be uninstalled", func(ctx context.Context) error {
		var list v1alpha1.SubscriptionList
		if err := c.List(ctx, &list); err != nil {
			return err
		}
		var left []string
		for _, s := range list.Items {
			if slices.Contains(namespaces, s.Namespace) {
				left = append(left, s.Namespace+"/"+s.Name)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("Subscriptions left: %s", strings.Join(left, ", "))
		}
		return nil
	})
	t.Logf("community operators uninstalled in %s", time.Since(begin).Round(time.Millisecond))
	sel, err := labels.Parse(install.LabelOwnerNamespace + " in (" + strings.Join(namespaces, ",") + ")")
	if err != nil {
		t.Fatal(err)
	}
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(ctx, &crds, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		t.Fatal(err)
	}
	for i := range crds.Items {
		if err := c.Delete(ctx, &crds.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CRD %s: %v", crds.Items[i].Name, err)
		}
	}
	poll(t, "the CRDs of the community operators to be deleted", func(ctx context.Context) error {
		var left apiextensionsv1.CustomResourceDefinitionList
		if err := c.List(ctx, &left, client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return err
		}
		if n := len(left.Items); n > 0 {
			return fmt.Errorf("%d CRDs left, e.g. %s", n, left.Items[0].Name)
		}
		return nil
	})
}

// installedAndReady: state Installed, conditions Installed and Ready true,
// for the current generation.
func installedAndReady(s *v1alpha1.Subscription) bool {
	ready := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.TypeReady)
	return s.Status.State == v1alpha1.StateInstalled &&
		meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeInstalled) &&
		ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == s.Generation
}

// inventoryNames are the names of the objects of kind in the
// Subscription's inventory, sorted.
func inventoryNames(s *v1alpha1.Subscription, kind string) []string {
	var names []string
	for _, ref := range s.Status.Inventory {
		if ref.Kind == kind {
			names = append(names, ref.Name)
		}
	}
	sort.Strings(names)
	return names
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// assertDeploymentsAvailable checks that the Subscription name in ns runs
// want Deployments, each with every replica updated and available, told
// the namespaces to watch (olm.targetNamespaces: "" for all), and returns
// their replicas in all.
func assertDeploymentsAvailable(t *testing.T, c client.Client, ns, name string, want int, targets string) int32 {
	t.Helper()
	var deps appsv1.DeploymentList
	if err := c.List(context.Background(), &deps, client.InNamespace(ns), client.MatchingLabels{install.LabelOwnerName: name}); err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != want {
		t.Errorf("Subscription %s/%s runs %d Deployments, want %d", ns, name, len(deps.Items), want)
	}
	var all int32
	for _, d := range deps.Items {
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		all += replicas
		cond := condition(&d, appsv1.DeploymentAvailable)
		if cond == nil || cond.Status != "True" || d.Status.AvailableReplicas != replicas || d.Status.UpdatedReplicas != replicas {
			t.Errorf("Deployment %s/%s: %d of %d replicas available, %d updated, Available %+v", ns, d.Name, d.Status.AvailableReplicas, replicas, d.Status.UpdatedReplicas, cond)
		}
		if got, ok := d.Spec.Template.Annotations[install.AnnotationTargetNamespaces]; !ok || got != targets {
			t.Errorf("Deployment %s/%s: pod template annotation %s = %q (set: %v), want %q", ns, d.Name, install.AnnotationTargetNamespaces, got, ok, targets)
		}
	}
	return all
}

// checkWebhooks checks the webhooks Ferry generated for op in ns: the
// configurations, and the CRDs (of the operator's crds) converted by a webhook, each
// calling a Service in ns whose serving certificate their caBundle
// verifies.
func checkWebhooks(t *testing.T, c client.Client, ns string, op communityOperator, crds []apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	ctx := context.Background()
	owned := client.MatchingLabels{install.LabelOwnerNamespace: ns, install.LabelOwnerName: op.pkg}
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	if err := c.List(ctx, &validating, owned); err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, &mutating, owned); err != nil {
		t.Fatal(err)
	}
	if len(validating.Items) != op.validating || len(mutating.Items) != op.mutating {
		t.Errorf("%d validating and %d mutating webhook configurations, want %d and %d", len(validating.Items), len(mutating.Items), op.validating, op.mutating)
	}
	for _, w := range validating.Items {
		for _, h := range w.Webhooks {
			checkWebhookClient(t, c, ns, "ValidatingWebhookConfiguration "+w.Name, h.ClientConfig.Service, h.ClientConfig.CABundle)
		}
	}
	for _, w := range mutating.Items {
		for _, h := range w.Webhooks {
			checkWebhookClient(t, c, ns, "MutatingWebhookConfiguration "+w.Name, h.ClientConfig.Service, h.ClientConfig.CABundle)
		}
	}
	converted := 0
	for _, crd := range crds {
		conv := crd.Spec.Conversion
		if conv == nil || conv.Strategy != apiextensionsv1.WebhookConverter || conv.Webhook == nil || conv.Webhook.ClientConfig == nil ||
			conv.Webhook.ClientConfig.Service == nil || conv.Webhook.ClientConfig.Service.Namespace != ns {
			continue // not converted by the operator's webhook (some ship one of their own)
		}
		converted++
		svc := conv.Webhook.ClientConfig.Service
		checkWebhookClient(t, c, ns, "CRD "+crd.Name, &admissionregistrationv1.ServiceReference{Namespace: svc.Namespace, Name: svc.Name}, conv.Webhook.ClientConfig.CABundle)
	}
	if converted != op.converted {
		t.Errorf("%d CRDs converted by a webhook in %s, want %d", converted, ns, op.converted)
	}
}

// checkWebhookClient checks that a webhook calls a Service of ns that
// exists, and that caBundle verifies the serving certificate in the
// Secret Ferry generated for it, for the Service's DNS name.
func checkWebhookClient(t *testing.T, c client.Client, ns, what string, svc *admissionregistrationv1.ServiceReference, caBundle []byte) {
	t.Helper()
	ctx := context.Background()
	if svc == nil || svc.Namespace != ns {
		t.Errorf("%s: calls %+v, want a Service in %s", what, svc, ns)
		return
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: svc.Name}, &corev1.Service{}); err != nil {
		t.Errorf("%s: Service %s/%s: %v", what, ns, svc.Name, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Errorf("%s: caBundle holds no certificate (%d bytes)", what, len(caBundle))
		return
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: svc.Name + "-cert"}, secret); err != nil {
		t.Errorf("%s: serving certificate Secret: %v", what, err)
		return
	}
	block, _ := pem.Decode(secret.Data[corev1.TLSCertKey])
	if block == nil {
		t.Errorf("%s: Secret %s/%s holds no PEM certificate in %s", what, ns, secret.Name, corev1.TLSCertKey)
		return
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Errorf("%s: Secret %s/%s: %v", what, ns, secret.Name, err)
		return
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: svc.Name + "." + ns + ".svc"}); err != nil {
		t.Errorf("%s: the caBundle does not verify the serving certificate of %s/%s: %v", what, ns, svc.Name, err)
	}
}
