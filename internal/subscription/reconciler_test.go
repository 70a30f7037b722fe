package subscription_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/revision"
	"github.com/ferrydev/ferry/internal/subscription"
	"github.com/ferrydev/ferry/internal/tenancy"
	"github.com/ferrydev/ferry/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	testenv.Main(m, &env, testenv.WithScheme(v1alpha1.AddToScheme, apiextensionsv1.AddToScheme))
}

const timeout = 60 * time.Second

// server is a real catalogd serving a catalog directory on 127.0.0.1.
type server struct {
	addr   string
	dir    string
	holder *catalogd.Holder
	srv    *catalogd.Server
	lis    net.Listener
}

func startCatalogd(t *testing.T, dir string) *server {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(dir)})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: lis.Addr().String(), dir: dir, holder: catalogd.NewHolder(c), lis: lis}
	s.srv = catalogd.NewServer(s.holder)
	go func() { _ = s.srv.Serve(lis) }()
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() { s.srv.GRPC().Stop() }

// reload serves the directory's current content.
func (s *server) reload(t *testing.T) {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(s.dir)})
	if err != nil {
		t.Fatal(err)
	}
	s.holder.Swap(c)
}

// sampleDir copies the sample catalog to a temp dir, leaving out paths
// (relative, e.g. "lighthouse-operator/1.3.0").
func sampleDir(t *testing.T, skip ...string) string {
	t.Helper()
	dir := t.TempDir()
	err := fsCopy(dir, skip)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func fsCopy(dst string, skip []string) error {
	entries, err := bundles.FS.ReadDir(".")
	if err != nil {
		return err
	}
	var walk func(p string) error
	walk = func(p string) error {
		for _, s := range skip {
			if p == s {
				return nil
			}
		}
		st, err := bundles.FS.ReadDir(p)
		if err != nil { // a file
			data, err := bundles.FS.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(p)), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, p), data, 0o644)
		}
		for _, e := range st {
			if err := walk(p + "/" + e.Name()); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := walk(e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

// startManager runs the CatalogSource and Subscription controllers, seeing
// the Subscriptions of one namespace only: the API server is shared by the
// tests, and what earlier tests left must not be reconciled again.
func startManager(t *testing.T, ns string) client.Client {
	t.Helper()
	// The controllers run as the installer does in a cluster: as its
	// ServiceAccount, with the generated RBAC. Setup and assertions use
	// env.Client (admin).
	installer := env.InstallerConfig(t)
	direct, err := client.New(installer, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// The installer's cache: installed kinds only when labelled as Ferry's,
	// so an object Ferry did not create is absent from it, as in a cluster.
	byObject := subscription.InstalledCache()
	byObject[&v1alpha1.Subscription{}] = cache.ByObject{Namespaces: map[string]cache.Config{ns: {}}}
	mgr, err := ctrl.NewManager(installer, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Client:  client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Pod{}}}},
		Cache:   cache.Options{ByObject: byObject},
		// Each test runs its own manager in this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	store := catalogsource.NewStore()
	if err := (&catalogsource.Reconciler{Client: mgr.GetClient(), Store: store, RetryBase: 100 * time.Millisecond, RetryCap: time.Second}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	// Subscriptions are installed as their ServiceAccount, under the
	// default policy: none without spec.serviceAccountName.
	clients, err := tenancy.NewClients(installer, client.Options{Scheme: env.Scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &subscription.Reconciler{
		Tenancy: &subscription.Tenancy{Clients: clients, Checker: tenancy.NewChecker(direct)},
		Client:  mgr.GetClient(), Catalogs: store, APIReader: mgr.GetAPIReader(), CRDs: subscription.NewCRDChecker(direct),
		Applier: &install.Applier{Client: mgr.GetClient(), FieldManager: install.FieldManager},
		// Events are recorded as in a cluster (events.k8s.io), as the installer.
		Recorder:      mgr.GetEventRecorder("ferry-installer"),
		HealthRequeue: 200 * time.Millisecond,
	}
	if err := rec.SetupWithManager(mgr, store.Events()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return env.Client
}

// markHealthy plays kube-controller-manager for the Deployments Ferry
// installs: envtest runs no controllers, so their status is set here.
func markHealthy(t *testing.T, ns string, unless func(*appsv1.Deployment) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			var list appsv1.DeploymentList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err == nil {
				for i := range list.Items {
					d := &list.Items[i]
					r := int32(1)
					if d.Spec.Replicas != nil {
						r = *d.Spec.Replicas
					}
					if unless != nil && unless(d) {
						continue
					}
					if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == r {
						continue
					}
					d.Status = appsv1.DeploymentStatus{
						ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r, ReadyReplicas: r, AvailableReplicas: r,
						Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
							LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
					}
					_ = env.Client.Status().Update(ctx, d)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// markUnavailable plays kube-controller-manager for the Deployments of ns
// that which selects and whose pods never become ready: each generation is
// observed, its replicas updated and none available.
func markUnavailable(t *testing.T, ns string, which func(*appsv1.Deployment) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var list appsv1.DeploymentList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				continue
			}
			for i := range list.Items {
				d := &list.Items[i]
				if !which(d) || d.Status.ObservedGeneration == d.Generation {
					continue
				}
				r := int32(1)
				if d.Spec.Replicas != nil {
					r = *d.Spec.Replicas
				}
				d.Status = appsv1.DeploymentStatus{
					ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r, UnavailableReplicas: r,
					Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable",
						LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
				}
				_ = env.Client.Status().Update(ctx, d)
			}
		}
	}()
}

// freshCRDs deletes CRDs earlier tests installed: CRDs are cluster-wide, and
// a test installing an older version would otherwise meet a newer CRD.
func freshCRDs(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if err := env.Client.Delete(context.Background(), crd); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			return apierrors.IsNotFound(env.Client.Get(ctx, types.NamespacedName{Name: n}, crd)), nil
		}); err != nil {
			t.Fatalf("CRD %s not deleted", n)
		}
	}
}

// setup starts a catalogd serving dir, the controllers watching a fresh
// namespace (Deployments marked healthy unless unhealthy says otherwise) and
// a CatalogSource for the catalogd, from fresh operator CRDs.
func setup(t *testing.T, dir string, unhealthy func(*appsv1.Deployment) bool) (srv *server, c client.Client, ns, cat string) {
	t.Helper()
	freshCRDs(t, "beacons.lighthouse.ferry.dev", "signalstores.signals.ferry.dev")
	srv = startCatalogd(t, dir)
	ns = namespace(t)
	c = startManager(t, ns)
	markHealthy(t, ns, unhealthy)
	cat = catalogSource(t, c, srv.addr)
	return srv, c, ns, cat
}

// patchSpec changes a Subscription's spec.
func patchSpec(t *testing.T, c client.Client, sub *v1alpha1.Subscription, change func(*v1alpha1.SubscriptionSpec)) {
	t.Helper()
	patch := client.MergeFrom(sub.DeepCopy())
	change(&sub.Spec)
	if err := c.Patch(context.Background(), sub, patch); err != nil {
		t.Fatal(err)
	}
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sub-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	// Subscriptions install with the ServiceAccount of examples/tenancy,
	// which may also install cluster-wide RBAC (the sample operators ask
	// for clusterPermissions and support AllNamespaces).
	if _, err := testenv.Tenant(context.Background(), env.Config, ns.Name, testenv.ClusterTenant); err != nil {
		t.Fatal(err)
	}
	// Registered before the test's manager starts, so it runs after it
	// stopped: no Subscription of this test is left for later managers to
	// reconcile (objects they installed may still point at them).
	t.Cleanup(func() {
		ctx := context.Background()
		var subs v1alpha1.SubscriptionList
		if err := env.Client.List(ctx, &subs, client.InNamespace(ns.Name)); err != nil {
			t.Errorf("listing Subscriptions: %v", err)
			return
		}
		for i := range subs.Items {
			s := &subs.Items[i]
			patch := client.MergeFrom(s.DeepCopy())
			s.Finalizers = nil
			_ = env.Client.Patch(ctx, s, patch)
			_ = env.Client.Delete(ctx, s)
		}
	})
	return ns.Name
}

func catalogSource(t *testing.T, c client.Client, addr string) string {
	t.Helper()
	cs := &v1alpha1.CatalogSource{ObjectMeta: metav1.ObjectMeta{GenerateName: "catalog-"}, Spec: v1alpha1.CatalogSourceSpec{Address: addr, TLS: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true}}}
	if err := c.Create(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), cs) })
	return cs.Name
}

func create(t *testing.T, c client.Client, ns, name, catalogName string, spec v1alpha1.SubscriptionSpec) {
	t.Helper()
	spec.Catalog = catalogName
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = testenv.TenantServiceAccount
	}
	if err := c.Create(context.Background(), &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
}

func waitSub(t *testing.T, c client.Client, ns, name, what string, ok func(*v1alpha1.Subscription) bool) *v1alpha1.Subscription {
	t.Helper()
	sub := &v1alpha1.Subscription{}
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sub); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return ok(sub), nil
	})
	if err != nil {
		t.Fatalf("Subscription %s/%s never %s; status: %+v", ns, name, what, sub.Status)
	}
	return sub
}

func installed(version string) func(*v1alpha1.Subscription) bool {
	return func(s *v1alpha1.Subscription) bool {
		return s.Status.InstalledVersion == version && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeInstalled)
	}
}

// observed is ok once the controller has resolved the Subscription's
// current generation.
func observed(ok func(*v1alpha1.Subscription) bool) func(*v1alpha1.Subscription) bool {
	return func(s *v1alpha1.Subscription) bool {
		c := condition(s, v1alpha1.TypeResolved)
		return c != nil && c.ObservedGeneration == s.Generation && ok(s)
	}
}

func condition(s *v1alpha1.Subscription, typ string) *metav1.Condition {
	return meta.FindStatusCondition(s.Status.Conditions, typ)
}

func TestInstallWithDependencyAndUpgrade(t *testing.T) {
	srv, c, ns, cat := setup(t, sampleDir(t, "lighthouse-operator/1.3.0", "lighthouse-operator/1.4.0"), nil)
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{
		Package: "lighthouse-operator", Channel: "stable",
		Config: &v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}}},
	})
	sub := waitSub(t, c, ns, "lighthouse", "installed 1.2.0", installed("1.2.0"))
	for _, typ := range []string{v1alpha1.TypeResolved, v1alpha1.TypeInstalled, v1alpha1.TypeProgressing, v1alpha1.TypeUpgradeAvailable, v1alpha1.TypeCatalogReachable} {
		cond := condition(sub, typ)
		if cond == nil || cond.ObservedGeneration != sub.Generation {
			t.Errorf("condition %s missing or stale: %+v", typ, cond)
		}
	}
	if sub.Status.State != v1alpha1.StateInstalled || sub.Status.LatestVersion != "1.2.0" || sub.Status.Catalog != cat {
		t.Errorf("status = %+v", sub.Status)
	}
	// The dependency is a child Subscription, installed first.
	child := waitSub(t, c, ns, "signal-store", "installed", func(s *v1alpha1.Subscription) bool { return s.Status.InstalledVersion != "" })
	if child.Labels[subscription.LabelParent] != "lighthouse" || child.Spec.VersionRange != ">=1.0.0 <2.0.0" {
		t.Errorf("child = labels %v spec %+v", child.Labels, child.Spec)
	}
	// The Deployment carries the REGION override.
	d := &appsv1.Deployment{}
	var depName string
	for _, o := range sub.Status.Inventory {
		if o.Kind == "Deployment" {
			depName = o.Name
		}
	}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: depName}, d); err != nil {
		t.Fatal(err)
	}
	if !hasEnv(d, "REGION", "eu-west-1") {
		t.Errorf("REGION not overridden: %+v", d.Spec.Template.Spec.Containers[0].Env)
	}

	// Drift: a deleted Deployment comes back.
	if err := c.Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: depName}, &appsv1.Deployment{})
		return err == nil, nil
	}); err != nil {
		t.Fatal("deleted Deployment was not restored")
	}

	// A new version in the catalog is installed automatically.
	if err := fsCopyOne(srv.dir, "lighthouse-operator/1.3.0"); err != nil {
		t.Fatal(err)
	}
	srv.reload(t)
	waitSub(t, c, ns, "lighthouse", "upgraded to 1.3.0", installed("1.3.0"))
	waitEvent(t, c, ns, "lighthouse", corev1.EventTypeNormal, v1alpha1.EventReasonInstalled, "lighthouse-operator installed 1.2.0")
	waitEvent(t, c, ns, "lighthouse", corev1.EventTypeNormal, v1alpha1.EventReasonDependencySubscribed, "created Subscription signal-store for signal-store")
	waitEvent(t, c, ns, "lighthouse", corev1.EventTypeNormal, v1alpha1.EventReasonUpgraded, "lighthouse-operator upgraded to 1.3.0")

	// Uninstall removes what was installed, keeps the CRD.
	if err := c.Delete(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(sub), &v1alpha1.Subscription{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal("Subscription not removed")
	}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: depName}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment left after uninstall: %v", err)
	}
	if err := c.Get(context.Background(), types.NamespacedName{Name: "beacons.lighthouse.ferry.dev"}, &apiextensionsv1.CustomResourceDefinition{}); err != nil {
		t.Errorf("CRD removed on uninstall: %v", err)
	}
}

func hasEnv(d *appsv1.Deployment, name, value string) bool {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value == value
		}
	}
	return false
}

func fsCopyOne(dst, p string) error {
	tmp := dst + ".new"
	if err := fsCopy(tmp, nil); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, p)), 0o755); err != nil {
		return err
	}
	return os.Rename(filepath.Join(tmp, p), filepath.Join(dst, p))
}

func TestManualApproval(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{
		Package: "signal-store", StartingVersion: "1.0.0", Approval: v1alpha1.ApprovalManual,
	})
	sub := waitSub(t, c, ns, "signals", "waiting for approval", func(s *v1alpha1.Subscription) bool {
		return s.Status.InstalledVersion == "1.0.0" && s.Status.AvailableUpgrade != nil
	})
	up := sub.Status.AvailableUpgrade
	if up.Version != "1.1.0" || up.Edge != "replaces" || len(up.Changes) == 0 || sub.Status.State != v1alpha1.StateUpgradePending {
		t.Fatalf("availableUpgrade = %+v, state %s", up, sub.Status.State)
	}
	cond := condition(sub, v1alpha1.TypeUpgradeAvailable)
	if cond.Status != metav1.ConditionTrue || !strings.Contains(cond.Message, `set spec.approvedVersion to "1.1.0"`) {
		t.Errorf("UpgradeAvailable = %+v", cond)
	}
	// Approving something else approves nothing.
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.ApprovedVersion = "9.9.9" })
	waitSub(t, c, ns, "signals", "still at 1.0.0 once the approval was seen", observed(installed("1.0.0")))
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.ApprovedVersion = "1.1.0" })
	sub = waitSub(t, c, ns, "signals", "upgraded after approval", installed("1.1.0"))
	if sub.Status.AvailableUpgrade != nil {
		t.Errorf("availableUpgrade left after the upgrade: %+v", sub.Status.AvailableUpgrade)
	}
}

func TestUnsatisfiableDoesNotBlockOthers(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "impossible", cat, v1alpha1.SubscriptionSpec{Package: "beacon-metrics", Channel: "stable", VersionRange: ">=9.0.0"})
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store"})
	sub := waitSub(t, c, ns, "impossible", "explained", func(s *v1alpha1.Subscription) bool { return s.Status.State == v1alpha1.StateFailed })
	want := `channel "stable" of package beacon-metrics in catalog "` + cat + `" has no version within the range >=9.0.0 (it has 1.0.0 and 1.1.0)`
	if !strings.Contains(sub.Status.Explanation, want) {
		t.Errorf("explanation = %q, want it to contain %q", sub.Status.Explanation, want)
	}
	if cond := condition(sub, v1alpha1.TypeResolved); cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonUnsatisfiable {
		t.Errorf("Resolved = %+v", cond)
	}
	waitSub(t, c, ns, "signals", "installed despite the other", installed("1.1.0"))
}

func TestCatalogUnreachable(t *testing.T) {
	srv, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.1.0"})
	sub := waitSub(t, c, ns, "signals", "installed", installed("1.1.0"))
	inventory := sub.Status.Inventory
	srv.stop()
	sub = waitSub(t, c, ns, "signals", "told the catalog is unreachable", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeCatalogReachable)
		return cond != nil && cond.Status == metav1.ConditionFalse
	})
	if !meta.IsStatusConditionTrue(sub.Status.Conditions, v1alpha1.TypeInstalled) || len(sub.Status.Inventory) != len(inventory) {
		t.Errorf("installed operator disturbed: %+v", sub.Status)
	}
	for _, o := range inventory {
		if o.Kind == "Deployment" {
			if err := c.Get(context.Background(), types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, &appsv1.Deployment{}); err != nil {
				t.Errorf("Deployment %s gone while the catalog is unreachable: %v", o.Name, err)
			}
		}
	}
	// A new Subscription against a catalog that never answered says so.
	dead := catalogSource(t, c, "127.0.0.1:1")
	create(t, c, ns, "nothing", dead, v1alpha1.SubscriptionSpec{Package: "signal-store"})
	sub = waitSub(t, c, ns, "nothing", "told the catalog is unreachable", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeResolved)
		return cond != nil && cond.Reason == v1alpha1.ReasonCatalogUnavailable
	})
	if !strings.Contains(condition(sub, v1alpha1.TypeCatalogReachable).Message, dead) {
		t.Errorf("CatalogReachable = %+v", condition(sub, v1alpha1.TypeCatalogReachable))
	}
}

func TestBadBundleAppliesNothing(t *testing.T) {
	dir := sampleDir(t)
	// signal-store 1.1.0 ships an object of a kind Ferry does not install.
	extra := "apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: gizmo\n"
	if err := os.WriteFile(filepath.Join(dir, "signal-store", "1.1.0", "manifests", "gizmo.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	_, c, ns, cat := setup(t, dir, nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.1.0"})
	sub := waitSub(t, c, ns, "signals", "refused", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeInstalled)
		return cond != nil && cond.Reason == v1alpha1.ReasonInvalidBundle
	})
	if !strings.Contains(condition(sub, v1alpha1.TypeInstalled).Message, "Gizmo") || sub.Status.State != v1alpha1.StateFailed {
		t.Errorf("status = %+v", sub.Status)
	}
	waitEvent(t, c, ns, "signals", corev1.EventTypeWarning, v1alpha1.ReasonInvalidBundle, "signal-store 1.1.0 cannot be installed, nothing was applied")
	var deps appsv1.DeploymentList
	if err := c.List(context.Background(), &deps, client.InNamespace(ns)); err != nil || len(deps.Items) != 0 {
		t.Errorf("something was applied: %d Deployments (%v)", len(deps.Items), err)
	}
}

func TestUnsupportedInstallMode(t *testing.T) {
	dir := sampleDir(t)
	// signal-store 1.0.0 as an operator that can only watch its own namespace.
	csv := filepath.Join(dir, "signal-store", "1.0.0", "manifests", "signal-store.clusterserviceversion.yaml")
	data, err := os.ReadFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "  - type: AllNamespaces\n    supported: true", "  - type: AllNamespaces\n    supported: false", 1))
	if err := os.WriteFile(csv, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, c, ns, cat := setup(t, dir, nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.0.0", InstallMode: v1alpha1.InstallModeAllNamespaces})
	sub := waitSub(t, c, ns, "signals", "refused", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeInstalled)
		return cond != nil && cond.Reason == v1alpha1.ReasonUnsupportedMode
	})
	if msg := condition(sub, v1alpha1.TypeInstalled).Message; !strings.Contains(msg, "AllNamespaces") {
		t.Errorf("Installed message = %q", msg)
	}
	var deps appsv1.DeploymentList
	if err := c.List(context.Background(), &deps, client.InNamespace(ns)); err != nil || len(deps.Items) != 0 {
		t.Errorf("something was applied: %d Deployments (%v)", len(deps.Items), err)
	}
}

func TestPaused(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", Paused: true})
	sub := waitSub(t, c, ns, "signals", "paused", func(s *v1alpha1.Subscription) bool { return s.Status.State == v1alpha1.StatePaused })
	var deps appsv1.DeploymentList
	if err := c.List(context.Background(), &deps, client.InNamespace(ns)); err != nil || len(deps.Items) != 0 {
		t.Errorf("a paused Subscription installed something: %d", len(deps.Items))
	}
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.Paused = false })
	waitSub(t, c, ns, "signals", "installed once unpaused", installed("1.1.0"))
}

func revisionsOf(t *testing.T, c client.Client, ns, sub string) []v1alpha1.Revision {
	t.Helper()
	var list v1alpha1.RevisionList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []v1alpha1.Revision
	for _, r := range list.Items {
		if r.Spec.Subscription == sub {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Revision < out[j].Spec.Revision })
	return out
}

func outcomes(revs []v1alpha1.Revision) string {
	var parts []string
	for _, r := range revs {
		parts = append(parts, fmt.Sprintf("%d:%s:%s:%s", r.Spec.Revision, r.Spec.Version, r.Spec.Reason, r.Status.Outcome))
	}
	return strings.Join(parts, " ")
}

// neverReady leaves the rollback demo's Deployment unavailable, as a
// nodeSelector no node matches would.
func neverReady(d *appsv1.Deployment) bool {
	return d.Spec.Template.Spec.NodeSelector["ferry.dev/rollback-demo"] != ""
}

func TestAutomaticRollback(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), neverReady)
	markUnavailable(t, ns, neverReady)
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{
		Package: "lighthouse-operator", Channel: "fast", StartingVersion: "1.3.0",
		HealthTimeout: &metav1.Duration{Duration: 2 * time.Second},
	})
	sub := waitSub(t, c, ns, "lighthouse", "rolled back from 1.4.0", func(s *v1alpha1.Subscription) bool {
		return s.Status.FailedUpgrade != nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeRolledBack) && installed("1.3.0")(s)
	})
	if f := sub.Status.FailedUpgrade; f.Version != "1.4.0" || f.Revision != 2 || !strings.Contains(f.Reason, "deployment "+ns+"/lighthouse-operator-controller-manager") {
		t.Errorf("failedUpgrade = %+v", f)
	}
	msg := condition(sub, v1alpha1.TypeRolledBack).Message
	for _, want := range []string{"lighthouse-operator 1.4.0 (revision 2) did not become healthy within 2s", "restored 1.3.0 (revision 1) as revision 3", "dependencies (signal-store 1.1.0) are not rolled back"} {
		if !strings.Contains(msg, want) {
			t.Errorf("RolledBack message %q lacks %q", msg, want)
		}
	}
	sub = waitSub(t, c, ns, "lighthouse", "healthy again on revision 3", func(s *v1alpha1.Subscription) bool {
		return s.Status.CurrentRevision == 3 && s.Status.State == v1alpha1.StateInstalled
	})
	waitEvent(t, c, ns, "lighthouse", corev1.EventTypeWarning, v1alpha1.EventReasonRolledBack, "restored 1.3.0 (revision 1) as revision 3")
	if got, want := outcomes(revisionsOf(t, c, ns, "lighthouse")), "1:1.3.0:Install:Healthy 2:1.4.0:Upgrade:RolledBack 3:1.3.0:Rollback:Healthy"; got != want {
		t.Errorf("revisions = %s, want %s", got, want)
	}
	// The failed version is not tried again: once the controller has seen
	// a new generation, the history is unchanged.
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.RevisionHistoryLimit = ptr.To[int32](9) })
	waitSub(t, c, ns, "lighthouse", "the new generation seen, still at 1.3.0", observed(installed("1.3.0")))
	if got := outcomes(revisionsOf(t, c, ns, "lighthouse")); !strings.HasSuffix(got, "3:1.3.0:Rollback:Healthy") {
		t.Errorf("the failed version was retried: %s", got)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(sub), sub); err != nil {
		t.Fatal(err)
	}
	if cond := condition(sub, v1alpha1.TypeUpgradeAvailable); cond == nil || cond.Reason != v1alpha1.ReasonUpgradeFailed || !strings.Contains(cond.Message, "operators.ferry.dev/retry-upgrade=1.4.0") {
		t.Errorf("UpgradeAvailable = %+v", cond)
	}
}

func TestManualRollbackAndHistory(t *testing.T) {
	srv, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.0.0", RevisionHistoryLimit: ptr.To[int32](2)})
	sub := waitSub(t, c, ns, "signals", "upgraded to 1.1.0", installed("1.1.0"))
	// The catalog goes away; the revision still has the objects of 1.0.0.
	srv.stop()
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.RollbackTo = &v1alpha1.RollbackTarget{Revision: 1} })
	sub = waitSub(t, c, ns, "signals", "rolled back to revision 1", func(s *v1alpha1.Subscription) bool {
		return installed("1.0.0")(s) && s.Status.CurrentRevision == 3
	})
	if cond := condition(sub, v1alpha1.TypeResolved); cond.Reason != v1alpha1.ReasonPinned {
		t.Errorf("Resolved = %+v", cond)
	}
	// Only revisionHistoryLimit revisions are kept.
	// The pinned revision 1 is kept; 2 goes.
	if got := outcomes(revisionsOf(t, c, ns, "signals")); got != "1:1.0.0:Install:Healthy 3:1.0.0:Rollback:Healthy" {
		t.Errorf("revisions = %s", got)
	}
	// Blobs of deleted revisions are collected; those in use remain.
	var blobs corev1.SecretList
	if err := c.List(context.Background(), &blobs, client.InNamespace(ns), client.MatchingLabels{revision.LabelBlob: "true"}); err != nil || len(blobs.Items) == 0 {
		t.Errorf("revision blobs: %d (%v)", len(blobs.Items), err)
	}
}

func TestCRDChangeBlocked(t *testing.T) {
	dir := sampleDir(t, "lighthouse-operator/1.4.0")
	srv, c, ns, cat := setup(t, dir, nil)
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "fast", StartingVersion: "1.3.0"})
	waitSub(t, c, ns, "lighthouse", "installed", installed("1.3.0"))
	beacon := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "lighthouse.ferry.dev/v1", "kind": "Beacon",
		"metadata": map[string]any{"name": "north", "namespace": ns},
		"spec":     map[string]any{"target": "web", "pattern": "Strobe"},
	}}
	if err := c.Create(context.Background(), beacon); err != nil {
		t.Fatal(err)
	}
	// 1.4.0 here is 1.3.0 with "Strobe" no longer allowed.
	if err := copyBundle(dir, "lighthouse-operator/1.3.0", "lighthouse-operator/1.4.0", map[string][2]string{
		"manifests/lighthouse-operator.clusterserviceversion.yaml": {"version: 1.3.0\n  replaces: lighthouse-operator.v1.2.0", "version: 1.4.0\n  replaces: lighthouse-operator.v1.3.0"},
		"manifests/lighthouse.ferry.dev_beacons.yaml":              {"                - Pulse\n                - Strobe\n", "                - Pulse\n"},
		"metadata/annotations.yaml":                                {"channels.v1: stable,fast", "channels.v1: fast"},
	}, "name: lighthouse-operator.v1.3.0", "name: lighthouse-operator.v1.4.0"); err != nil {
		t.Fatal(err)
	}
	srv.reload(t)
	sub := waitSub(t, c, ns, "lighthouse", "blocked", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeCRDUpgradeSafe)
		return cond != nil && cond.Status == metav1.ConditionFalse
	})
	want := `CRD beacons.lighthouse.ferry.dev: Beacon ` + ns + `/north (stored as v1) is invalid under the new schema: spec.pattern: Unsupported value: "Strobe"`
	if msg := condition(sub, v1alpha1.TypeCRDUpgradeSafe).Message; !strings.Contains(msg, want) {
		t.Errorf("CRDUpgradeSafe message:\n%s\nwant it to contain:\n%s", msg, want)
	}
	if sub.Status.InstalledVersion != "1.3.0" || sub.Status.CurrentRevision != 1 {
		t.Errorf("the blocked upgrade changed something: %+v", sub.Status)
	}
	// With Warn the upgrade goes ahead.
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.CRDUpgradeSafety = v1alpha1.CRDSafetyWarn })
	waitSub(t, c, ns, "lighthouse", "upgraded under Warn", installed("1.4.0"))
}

// copyBundle copies bundle directory from to to inside dir, replacing text
// in some files (pairs per file) and, in every file, old with new.
func copyBundle(dir, from, to string, edits map[string][2]string, old, new string) error {
	src, dst := filepath.Join(dir, from), filepath.Join(dir+".tmp", to)
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := strings.ReplaceAll(string(data), old, new)
		if e, ok := edits[filepath.ToSlash(rel)]; ok {
			if !strings.Contains(s, e[0]) {
				return fmt.Errorf("%s: %q not found", rel, e[0])
			}
			s = strings.Replace(s, e[0], e[1], 1)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), []byte(s), 0o644)
	})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir + ".tmp")
	return os.Rename(dst, filepath.Join(dir, to))
}
