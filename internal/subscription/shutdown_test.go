package subscription_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
)

// logLines keeps every line a logger writes.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// stallingReader is the API reader of a reconcile in flight at shutdown:
// listing Revisions, in the middle of observing the Subscription, waits
// until its context is done and returns its error, as client-go does.
type stallingReader struct {
	client.Reader
	// entered is closed when the first List of Revisions waits.
	entered chan struct{}
	once    sync.Once
}

func (s *stallingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*v1alpha1.RevisionList); !ok {
		return s.Reader.List(ctx, list, opts...)
	}
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	return fmt.Errorf("list revisions: %w", ctx.Err())
}

// TestShutdownIsNoError: a reconcile in flight when the installer stops
// ends quietly: no "Reconciler error" in the log, and no condition saying
// the Subscription failed or is retried.
func TestShutdownIsNoError(t *testing.T) {
	ns := namespace(t)
	logs := &logLines{}
	byObject := subscription.InstalledCache()
	byObject[&v1alpha1.Subscription{}] = cache.ByObject{Namespaces: map[string]cache.Config{ns: {}}}
	installer := env.InstallerConfig(t)
	mgr, err := ctrl.NewManager(installer, ctrl.Options{
		Scheme:     env.Scheme,
		Logger:     funcr.New(logs.add, funcr.Options{Verbosity: 1}),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{ByObject: byObject},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	reader := &stallingReader{Reader: mgr.GetAPIReader(), entered: make(chan struct{})}
	store := catalogsource.NewStore()
	rec := &subscription.Reconciler{
		Client: mgr.GetClient(), APIReader: reader, Catalogs: store,
		Applier:  &install.Applier{Client: mgr.GetClient(), FieldManager: install.FieldManager},
		Recorder: mgr.GetEventRecorder("ferry-installer"),
	}
	if err := rec.SetupWithManager(mgr, store.Events()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()

	sub := &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stopped"},
		Spec:       v1alpha1.SubscriptionSpec{Package: "signal-store"},
	}
	if err := env.Client.Create(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reader.entered:
	case <-time.After(timeout):
		t.Fatal("no reconcile reached the listing of revisions")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("manager: %v", err)
		}
	case <-time.After(timeout):
		t.Fatal("the manager did not stop")
	}

	lines := logs.all()
	stopped := false
	for _, l := range lines {
		if strings.Contains(l, "Reconciler error") {
			t.Errorf("logged at shutdown: %s", l)
		}
		stopped = stopped || strings.Contains(l, "reconcile stopped by shutdown")
	}
	if !stopped {
		t.Errorf("no line says the reconcile stopped by shutdown; log:\n%s", strings.Join(lines, "\n"))
	}
	got := &v1alpha1.Subscription{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(sub), got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.TypeProgressing); c != nil {
		t.Errorf("Progressing %+v written at shutdown, want none", c)
	}
	if got.Status.State != "" {
		t.Errorf("state %q written at shutdown, want none", got.Status.State)
	}
}
