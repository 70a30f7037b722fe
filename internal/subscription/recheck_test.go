package subscription_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/subscription"
	"github.com/ferrydev/ferry/internal/tenancy"
)

// requestCounter counts the installer's requests: server-side applies, and
// reads of one Subscription (one per reconcile: it is read from the API
// server first).
type requestCounter struct {
	mu      sync.Mutex
	sub     string
	applies int
	reads   int
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		c.mu.Lock()
		switch {
		case req.Method == http.MethodPatch && strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch"):
			c.applies++
		case req.Method == http.MethodGet && c.sub != "" && strings.HasSuffix(req.URL.Path, "/subscriptions/"+c.sub):
			c.reads++
		}
		c.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

func (c *requestCounter) counts() (applies, reads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applies, c.reads
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// startCountingManager is startManager with every request of the
// installer, its own and those made as ServiceAccounts, counted.
func startCountingManager(t *testing.T, ns string, counter *requestCounter) client.Client {
	t.Helper()
	installer := rest.CopyConfig(env.InstallerConfig(t))
	installer.Wrap(counter.wrap)
	direct, err := client.New(installer, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	byObject := subscription.InstalledCache()
	byObject[&v1alpha1.Subscription{}] = cache.ByObject{Namespaces: map[string]cache.Config{ns: {}}}
	mgr, err := ctrl.NewManager(installer, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Client:     client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Pod{}}}},
		Cache:      cache.Options{ByObject: byObject},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	store := catalogsource.NewStore()
	if err := (&catalogsource.Reconciler{Client: mgr.GetClient(), Store: store, RetryBase: 100 * time.Millisecond, RetryCap: time.Second}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	clients, err := tenancy.NewClients(installer, client.Options{Scheme: env.Scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &subscription.Reconciler{
		Tenancy: &subscription.Tenancy{Clients: clients, Checker: tenancy.NewChecker(direct)},
		Client:  mgr.GetClient(), Catalogs: store, APIReader: mgr.GetAPIReader(), CRDs: subscription.NewCRDChecker(direct),
		Applier:       &install.Applier{Client: mgr.GetClient(), FieldManager: install.FieldManager},
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

// waitingForHealth installs signal-store 1.1.0, whose Deployment never
// becomes available, and returns once the Subscription waits for it.
func waitingForHealth(t *testing.T, counter *requestCounter) (client.Client, string) {
	t.Helper()
	never := func(*appsv1.Deployment) bool { return true }
	freshCRDs(t, "beacons.lighthouse.ferry.dev", "signalstores.signals.ferry.dev")
	srv := startCatalogd(t, sampleDir(t))
	ns := namespace(t)
	counter.sub = "signals"
	c := startCountingManager(t, ns, counter)
	markUnavailable(t, ns, never)
	cat := catalogSource(t, c, srv.addr)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{
		Package: "signal-store", StartingVersion: "1.1.0", HealthTimeout: &metav1.Duration{Duration: time.Hour},
	})
	waitSub(t, c, ns, "signals", "waiting for its Deployment", func(s *v1alpha1.Subscription) bool {
		p := condition(s, v1alpha1.TypeProgressing)
		return p != nil && p.Reason == v1alpha1.ReasonWaitingForHealthy && strings.Contains(p.Message, "deployment "+ns+"/")
	})
	return c, ns
}

// rechecks waits until the Subscription was reconciled n more times.
func rechecks(t *testing.T, counter *requestCounter, n int) {
	t.Helper()
	_, from := counter.counts()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		_, reads := counter.counts()
		return reads >= from+n, nil
	}); err != nil {
		t.Fatalf("fewer than %d reconciles of the Subscription within %s", n, timeout)
	}
}

// TestHealthRecheckMakesNoApply: while a revision waits for its health
// gate and nothing of it drifts, a requeue only reads its health: no
// server-side apply.
func TestHealthRecheckMakesNoApply(t *testing.T) {
	counter := &requestCounter{}
	waitingForHealth(t, counter)
	// The install's own writes are watch events, heard of as drift once:
	// let the rechecks they cause pass.
	rechecks(t, counter, 3)
	applies, _ := counter.counts()
	if applies == 0 {
		t.Fatal("no server-side apply counted: the counter sees nothing")
	}
	rechecks(t, counter, 5)
	if after, _ := counter.counts(); after != applies {
		t.Errorf("%d server-side applies during 5 health rechecks, want none", after-applies)
	}
}

// TestDriftDuringHealthWaitIsCorrected: an installed object deleted while
// its revision waits for its health gate is applied again.
func TestDriftDuringHealthWaitIsCorrected(t *testing.T) {
	counter := &requestCounter{}
	c, ns := waitingForHealth(t, counter)
	rechecks(t, counter, 3)
	sub := &v1alpha1.Subscription{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "signals"}, sub); err != nil {
		t.Fatal(err)
	}
	ref := inventoryRef(t, sub, "", "ServiceAccount")
	sa := &corev1.ServiceAccount{}
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	if err := c.Get(context.Background(), key, sa); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got := &corev1.ServiceAccount{}
		err := c.Get(ctx, key, got)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && got.UID != sa.UID, err
	}); err != nil {
		t.Fatalf("ServiceAccount %s not restored during the health wait: %v", key, err)
	}
}
