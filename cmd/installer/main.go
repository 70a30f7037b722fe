// Command installer is Ferry's in-cluster controller: it follows
// CatalogSources and turns Subscriptions into running operators.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/logging"
	"github.com/ferrydev/ferry/internal/subscription"
	"github.com/ferrydev/ferry/internal/tenancy"
)

// Defaults of the installer's client-side rate limit towards the API
// server, per identity. controller-runtime's own (20 a second, bursts of
// 30) held the installer's identity — access reviews, ownership reads,
// status writes — to a fraction of what the concurrent reconciles ask at
// 1,000 Subscriptions (docs/scale.md); the API server's priority and
// fairness, not this limit, is what protects it from overload.
const (
	DefaultKubeAPIQPS   = 100
	DefaultKubeAPIBurst = 200
)

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return // --help: the flag set printed the usage
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "installer:", err)
		os.Exit(1)
	}
}

// Scheme holds every type the installer reads or writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("installer", flag.ContinueOnError)
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	leaderElect := fs.Bool("leader-elect", true, "elect a leader, so that only one replica acts")
	leaderNamespace := fs.String("leader-election-namespace", "", "namespace of the leader election lease (default: the pod's namespace)")
	tlsNamespace := fs.String("catalog-tls-namespace", catalogsource.DefaultTLSNamespace, "the only namespace the Secrets and ConfigMaps named by a CatalogSource's spec.tls are read from")
	healthRequeue := fs.Duration("health-requeue", 5*time.Second, "how often an operator that is becoming healthy is checked")
	resync := fs.Duration("resync-period", subscription.DefaultResyncPeriod, "how often every installed object and every Subscription is reconciled again without an event: the bound on how late drift a watch missed is corrected")
	apiPoll := fs.Duration("api-poll-interval", subscription.DefaultAPIPollInterval, "how often discovery is asked whether the API of an optional installed kind (ServiceMonitor, PrometheusRule, VerticalPodAutoscaler) is served, to watch it for drift")
	workers := fs.Int("max-concurrent-reconciles", subscription.DefaultMaxConcurrentReconciles, fmt.Sprintf("how many Subscriptions are reconciled at once (1 to %d)", subscription.MaxConcurrentReconcilesLimit))
	apiQPS := fs.Float64("kube-api-qps", DefaultKubeAPIQPS, "steady rate of requests per second to the API server, per identity (the installer's own and each ServiceAccount it writes as)")
	apiBurst := fs.Int("kube-api-burst", DefaultKubeAPIBurst, "requests above --kube-api-qps allowed in a burst, per identity")
	defaultSA := fs.String("default-service-account", "", "ServiceAccount, in a Subscription's namespace, that the Subscription's writes are made as when it names none in spec.serviceAccountName; empty: such a Subscription is refused")
	logFormat := fs.String("log-format", logging.FormatJSON, "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *resync <= 0 || *apiPoll <= 0 {
		return fmt.Errorf("--resync-period (%s) and --api-poll-interval (%s) must be positive", *resync, *apiPoll)
	}
	if err := subscription.ValidateMaxConcurrentReconciles(*workers); err != nil {
		return fmt.Errorf("--max-concurrent-reconciles: %w", err)
	}
	if *apiQPS <= 0 || *apiBurst < 1 {
		return fmt.Errorf("--kube-api-qps (%g) must be positive and --kube-api-burst (%d) at least 1", *apiQPS, *apiBurst)
	}
	log, err := logging.New(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	policy := tenancy.Policy{DefaultServiceAccount: *defaultSA}
	if err := policy.Validate(); err != nil {
		return fmt.Errorf("--default-service-account: %w", err)
	}
	ctrl.SetLogger(log)
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(*apiQPS), *apiBurst
	byObject := subscription.InstalledCache()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "installer.operators.ferry.dev",
		LeaderElectionNamespace: *leaderNamespace,
		// The process exits as soon as the manager stops, so the lease can
		// be let go at once: a replacement (a rollout, a restart) leads
		// without waiting for it to expire.
		LeaderElectionReleaseOnCancel: true,
		// Every resync period, informers hand every cached object to
		// the controllers again (docs/safe-upgrades.md, drift).
		Cache: cache.Options{ByObject: byObject, SyncPeriod: resync},
		// Pods are read to explain unhealthy Deployments; they are not cached.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Pod{}}}},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	store := catalogsource.NewStore()
	if err := (&catalogsource.Reconciler{Client: mgr.GetClient(), Store: store, TLSNamespace: *tlsNamespace}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CatalogSource controller: %w", err)
	}
	// CRD checks list custom resources in pages, straight from the API server.
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating API client: %w", err)
	}
	// Every write a Subscription causes is made as its ServiceAccount:
	// impersonating clients share the manager's scheme and REST mapper; the
	// access reviews and the reads of roles are the installer's own.
	clients, err := tenancy.NewClients(cfg, client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return err
	}
	rec := &subscription.Reconciler{
		Tenancy:   &subscription.Tenancy{Policy: policy, Clients: clients, Checker: tenancy.NewChecker(direct)},
		CRDs:      subscription.NewCRDChecker(direct),
		Client:    mgr.GetClient(),
		Catalogs:  store,
		APIReader: mgr.GetAPIReader(),
		// Ownership is read from the API server: the cache holds only
		// what Ferry labelled, and an object it did not create would look absent.
		Applier:       &install.Applier{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), FieldManager: install.FieldManager},
		Recorder:      mgr.GetEventRecorder("ferry-installer"),
		HealthRequeue: *healthRequeue,
	}
	if err := rec.SetupWithManager(mgr, store.Events(), subscription.WithResyncPeriod(*resync), subscription.WithAPIPollInterval(*apiPoll), subscription.WithMaxConcurrentReconciles(*workers)); err != nil {
		return fmt.Errorf("setting up the Subscription controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting installer", "leaderElection", *leaderElect, "defaultServiceAccount", policy.DefaultServiceAccount,
		"maxConcurrentReconciles", *workers, "kubeAPIQPS", *apiQPS, "kubeAPIBurst", *apiBurst)
	return mgr.Start(ctrl.SetupSignalHandler())
}
