package subscription

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/revision"
	"github.com/ferrydev/ferry/internal/tenancy"
	"github.com/ferrydev/ferry/internal/testenv"
)

// SharedEnv is the package's test environment, set by the external test
// package whose TestMain starts it.
var SharedEnv func() *testenv.Env

// actionBed is one action's test bed: a fresh namespace with the tenant
// ServiceAccount, a Subscription in it, and a Reconciler running as the
// installer's deployed identity, its events recorded.
type actionBed struct {
	t   *testing.T
	ctx context.Context
	env *testenv.Env
	r   *Reconciler
	rec *events.FakeRecorder
	ns  string
	sub *v1alpha1.Subscription
	// requests are the requests the Reconciler made, as the installer or
	// as a ServiceAccount it acts as.
	requests *requestLog
}

// bedOption changes how newActionBed sets a bed up.
type bedOption func(*bedOptions)

type bedOptions struct {
	refusable func(request) bool
}

// allowRefused lets the API server refuse with 403 Forbidden the requests
// of the Reconciler that match (the test makes it refuse them). Any other
// refusal still fails the test, as testenv.InstallerConfig's check does.
func allowRefused(match func(request) bool) bedOption {
	return func(o *bedOptions) { o.refusable = match }
}

func newActionBed(t *testing.T, spec v1alpha1.SubscriptionSpec, opts ...bedOption) *actionBed {
	t.Helper()
	var o bedOptions
	for _, opt := range opts {
		opt(&o)
	}
	if SharedEnv == nil || SharedEnv() == nil {
		t.Fatal("no test environment: TestMain did not start one")
	}
	env := SharedEnv()
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "act-"}}
	if err := env.Client.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	sa, err := testenv.Tenant(ctx, env.Config, ns, testenv.ClusterTenant)
	if err != nil {
		t.Fatal(err)
	}
	installer := env.InstallerConfig(t)
	log := &requestLog{}
	if o.refusable != nil {
		// testenv's check of every 403 is replaced by one that knows what
		// this test makes the API server refuse.
		installer.WrapTransport = nil
		t.Cleanup(func() {
			for _, r := range log.all() {
				if r.status == http.StatusForbidden && !o.refusable(r) {
					t.Errorf("the API server refused %s (Forbidden), which the test did not make it refuse", r)
				}
			}
		})
	}
	installer.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &loggingTransport{next: rt, log: log} })
	c, err := client.New(installer, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	clients, err := tenancy.NewClients(installer, client.Options{Scheme: env.Scheme, Mapper: c.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewFakeRecorder(100)
	r := &Reconciler{
		Client: c, APIReader: c, Recorder: rec, HealthRequeue: 200 * time.Millisecond,
		Tenancy: &Tenancy{Clients: clients, Checker: tenancy.NewChecker(c)},
		Applier: &install.Applier{Client: c, FieldManager: install.FieldManager},
	}
	spec.ServiceAccountName = sa
	if spec.Package == "" {
		spec.Package = "pkg"
	}
	if spec.Catalog == "" {
		spec.Catalog = "cat"
	}
	sub := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s", Finalizers: []string{Finalizer}}, Spec: spec}
	if err := env.Client.Create(ctx, sub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s := &v1alpha1.Subscription{}
		if env.Client.Get(ctx, client.ObjectKeyFromObject(sub), s) == nil {
			patch := client.MergeFrom(s.DeepCopy())
			s.Finalizers = nil
			_ = env.Client.Patch(ctx, s, patch)
			_ = env.Client.Delete(ctx, s)
		}
	})
	return &actionBed{t: t, ctx: ctx, env: env, r: r, rec: rec, ns: ns, sub: sub, requests: log}
}

// request is one request the Reconciler made and the API server's answer.
type request struct {
	method, path string
	// as is the identity impersonated; "" for the installer's own.
	as     string
	status int
}

func (r request) String() string {
	who := r.as
	if who == "" {
		who = "the installer"
	}
	return fmt.Sprintf("%s %s as %s: %d", r.method, r.path, who, r.status)
}

// requestLog keeps the requests of one bed, at most maxLogged.
type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

const maxLogged = 10000

func (l *requestLog) all() []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]request(nil), l.reqs...)
}

// writes are the requests that change objects whose path ends with
// suffix (a resource, or a resource and name).
func (l *requestLog) writes(suffix string) []request {
	var out []request
	for _, r := range l.all() {
		if r.method != http.MethodGet && strings.HasSuffix(r.path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// loggingTransport sits under the impersonation of a ServiceAccount: it
// sees who each request is made as.
type loggingTransport struct {
	next http.RoundTripper
	log  *requestLog
}

func (t *loggingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	r := request{method: req.Method, path: req.URL.Path, as: req.Header.Get("Impersonate-User")}
	if err == nil {
		r.status = resp.StatusCode
	}
	t.log.mu.Lock()
	if len(t.log.reqs) < maxLogged {
		t.log.reqs = append(t.log.reqs, r)
	}
	t.log.mu.Unlock()
	return resp, err
}

// serviceAccount is the username of the bed's ServiceAccount.
func (b *actionBed) serviceAccount() string {
	return "system:serviceaccount:" + b.ns + ":" + b.sub.Spec.ServiceAccountName
}

// exec is a reconcile's shared state for the Subscription as stored now.
func (b *actionBed) exec() *exec {
	b.t.Helper()
	sub := b.get()
	ap, err := b.r.applierFor(b.ctx, sub)
	if err != nil {
		b.t.Fatalf("applier: %v", err)
	}
	return &exec{sub: sub, orig: sub.DeepCopy(), before: *sub.Status.DeepCopy(), ap: ap, log: logr.Discard()}
}

// facts are the Subscription's stored revisions, the current one last.
func (b *actionBed) facts(x *exec) *facts {
	b.t.Helper()
	revs, err := b.r.revisions().List(b.ctx, x.sub)
	if err != nil {
		b.t.Fatal(err)
	}
	f := &facts{sub: x.sub, now: time.Now(), revisions: revs}
	for i := range revs {
		if revs[i].Spec.Revision == x.sub.Status.CurrentRevision {
			f.current = &f.revisions[i]
		}
	}
	return f
}

// get reads the Subscription from the API server.
func (b *actionBed) get() *v1alpha1.Subscription {
	b.t.Helper()
	s := &v1alpha1.Subscription{}
	if err := b.env.Client.Get(b.ctx, client.ObjectKeyFromObject(b.sub), s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// revisions are the Subscription's stored revisions, oldest first.
func (b *actionBed) revisions() []v1alpha1.Revision {
	b.t.Helper()
	revs, err := b.r.revisions().List(b.ctx, b.get())
	if err != nil {
		b.t.Fatal(err)
	}
	return revs
}

// configMap reads a ConfigMap of the namespace; nil when absent.
func (b *actionBed) configMap(name string) *corev1.ConfigMap {
	b.t.Helper()
	cm := &corev1.ConfigMap{}
	err := b.env.Client.Get(b.ctx, client.ObjectKey{Namespace: b.ns, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return cm
}

// events drains the recorded events.
func (b *actionBed) events() []string {
	var out []string
	for len(b.rec.Events) > 0 {
		out = append(out, <-b.rec.Events)
	}
	return out
}

// install records and applies version with the given objects as the
// decision to install it would, and fails the test unless it is applied.
func (b *actionBed) install(version, reason string, rollbackOf int64, objs ...*unstructured.Unstructured) *v1alpha1.Revision {
	b.t.Helper()
	x := b.exec()
	res := b.r.install(b.ctx, x, b.facts(x), installDecision(version, reason, rollbackOf, objs...))
	if res.err != nil || res.phase != phaseProgressing || res.rev == nil {
		b.t.Fatalf("install %s: phase %d, err %v", version, res.phase, res.err)
	}
	return res.rev
}

// finish records a revision's outcome.
func (b *actionBed) finish(rev *v1alpha1.Revision, outcome v1alpha1.RevisionOutcome) {
	b.t.Helper()
	if err := b.r.revisions().Finish(b.ctx, rev, outcome, "set by the test"); err != nil {
		b.t.Fatal(err)
	}
}

func installDecision(version, reason string, rollbackOf int64, objs ...*unstructured.Unstructured) decision {
	return decision{action: actInstall, reason: v1alpha1.ReasonInstalling, message: "installing " + version, want: &content{
		target:  revision.Target{Catalog: "cat", Bundle: "pkg.v" + version, Version: version},
		objects: objs, digest: "sha256:" + version, reason: reason, rollbackOf: rollbackOf,
	}}
}

// keepDecision applies the current revision's content again.
func keepDecision(act action, rev *v1alpha1.Revision) decision {
	return decision{action: act, reason: v1alpha1.ReasonWaitingForHealthy, message: fmt.Sprintf("waiting for revision %d", rev.Spec.Revision), want: &content{
		target: revision.Target{Catalog: rev.Spec.Catalog, Bundle: rev.Spec.Bundle, Version: rev.Spec.Version},
		from:   rev, digest: rev.Spec.ContentDigest, reason: rev.Spec.Reason,
	}}
}

// cm is a ConfigMap of the operator's content.
func cm(ns, name, value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace(ns)
	u.SetName(name)
	_ = unstructured.SetNestedStringMap(u.Object, map[string]string{"value": value}, "data")
	return u
}

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
