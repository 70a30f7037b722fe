package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/testbin"
	"github.com/ferrydev/ferry/internal/testcluster"
	"github.com/ferrydev/ferry/internal/testenv"
)

const (
	// catalogName is the CatalogSource every Subscription uses.
	catalogName = "bench"
	// subscriptionName is each namespace's Subscription.
	subscriptionName = "bench"
	// The namespaces of the installer's run and of the floor: a fixed
	// width, so that no name is part of another (the floor's objects are
	// copied from the first namespace's by replacing its name).
	installNamespaceFormat = "ib-%05d"
	floorNamespaceFormat   = "ibf-%05d"
	// pollInterval is how often the bench lists what it waits for: one
	// list a second, next to the thousands of requests it waits on.
	pollInterval = time.Second
	// adminQPS keeps the bench's own client from being the limit.
	adminQPS, adminBurst = 1000, 2000
)

// run brings the cluster up, measures and brings it down.
func run(ctx context.Context, c config) (*result, error) {
	root, err := testbin.ModuleRoot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	res := &result{n: c.n, nodes: nodesFor(c.n), installerArgs: c.installerArgs}
	binDir := c.bin
	if binDir == "" {
		logf("building catalogd and the installer")
		binDir = filepath.Join(c.dir, "bin")
		build := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(filepath.Separator), "./cmd/catalogd", "./cmd/installer")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build: %w\n%s", err, out)
		}
	}
	for _, name := range []string{"catalogd", "installer"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return nil, fmt.Errorf("the %s binary: %w", name, err)
		}
	}

	clusterOpts := []testcluster.Option{
		testcluster.WithDir(filepath.Join(c.dir, "cluster")),
		testcluster.WithNodes(res.nodes),
		testcluster.WithTimeout(5 * time.Minute),
		testcluster.WithLogf(func(format string, args ...any) { logf("cluster: "+format, args...) }),
	}
	cl, err := testcluster.Up(ctx, clusterOpts...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if c.keep {
			logf("the cluster keeps running in %s", cl.Dir)
			return
		}
		if derr := testcluster.Down(clusterOpts...); derr != nil {
			logf("error stopping the cluster: %v", derr)
		}
	}()
	admin := rest.CopyConfig(cl.Config)
	admin.QPS, admin.Burst = adminQPS, adminBurst
	kc, err := newClient(admin)
	if err != nil {
		return nil, err
	}
	b := &bench{c: c, root: root, binDir: binDir, admin: admin, client: kc, res: res}
	err = b.measure(ctx)
	return res, errors.Join(err, b.stopAll())
}

func newClient(cfg *rest.Config) (client.Client, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return client.New(cfg, client.Options{Scheme: s})
}

type bench struct {
	c      config
	root   string
	binDir string
	admin  *rest.Config
	client client.Client
	res    *result

	catalogd, installer *process
	installerMetrics    string
	// installedSoFar is how many Subscriptions the last look found Installed.
	installedSoFar int
}

func (b *bench) stopAll() error {
	var errs []error
	for _, p := range []*process{b.installer, b.catalogd} {
		if p != nil {
			if err := p.stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", p.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (b *bench) measure(ctx context.Context) error {
	if err := b.deploy(ctx); err != nil {
		return err
	}
	installNS := namespaces(installNamespaceFormat, b.c.n)
	logf("setup: %d namespaces, each with the tenant ServiceAccount and its RBAC (examples/tenancy)", b.c.n)
	setupStart := time.Now()
	sa := ""
	err := parallel(ctx, b.c.workers, installNS, func(ctx context.Context, ns string) error {
		name, err := testenv.Tenant(ctx, b.admin, ns, testenv.ClusterTenant)
		if err == nil && ns == installNS[0] {
			sa = name
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	logf("setup took %.1f s", time.Since(setupStart).Seconds())
	before, err := scrape(ctx, b.installerMetrics)
	if err != nil {
		return fmt.Errorf("the installer's metrics before the run: %w", err)
	}

	logf("creating %d Subscriptions to %s (channel %s), %d at a time", b.c.n, b.c.pkg, b.c.channel, b.c.workers)
	start := time.Now()
	err = parallel(ctx, b.c.workers, installNS, func(ctx context.Context, ns string) error {
		sub := &v1alpha1.Subscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: subscriptionName},
			Spec: v1alpha1.SubscriptionSpec{
				Package: b.c.pkg, Channel: b.c.channel, Catalog: catalogName, ServiceAccountName: sa,
			},
		}
		if err := b.client.Create(ctx, sub); err != nil {
			return fmt.Errorf("creating Subscription %s/%s: %w", ns, subscriptionName, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	waitErr := b.waitInstalled(ctx, installNS)
	b.res.installed = time.Since(start)
	b.res.installLoad = loadAverage()
	if waitErr != nil {
		// What the installer did until the deadline is measured too: the
		// table says how far it got.
		b.res.timedOut, b.res.installedOf = true, b.installedSoFar
		return errors.Join(waitErr, b.collect(ctx, before))
	}
	logf("all %d Subscriptions Installed after %.1f s", b.c.n, b.res.installed.Seconds())
	if err := b.collect(ctx, before); err != nil {
		return err
	}
	if lines, err := b.installer.forbidden(); err != nil || len(lines) > 0 {
		return errors.Join(err, fmt.Errorf("the installer was refused by the API server; its RBAC lacks a permission it uses:\n%s", strings.Join(lines, "\n")))
	}

	// The floor runs with Ferry stopped: nothing but the cluster works.
	if err := b.stopAll(); err != nil {
		return err
	}
	b.installer, b.catalogd = nil, nil
	return b.floor(ctx, installNS[0])
}

// collect reads the installer's metrics and peak memory into the result,
// counting from before.
func (b *bench) collect(ctx context.Context, before samples) error {
	after, err := scrape(ctx, b.installerMetrics)
	if err != nil {
		return fmt.Errorf("the installer's metrics after the run: %w", err)
	}
	b.res.requests = after.sum(restRequests, nil) - before.sum(restRequests, nil)
	b.res.reconciles = after.sum(reconciles, map[string]string{"controller": "subscription"}) - before.sum(reconciles, map[string]string{"controller": "subscription"})
	for _, method := range requestMethods {
		m := map[string]string{"method": method}
		b.res.requestsByMethod = append(b.res.requestsByMethod, after.sum(restRequests, m)-before.sum(restRequests, m))
	}
	sub := map[string]string{"controller": "subscription"}
	if n := after.sum(reconcileTime+"_count", sub) - before.sum(reconcileTime+"_count", sub); n > 0 {
		b.res.reconcileSeconds = (after.sum(reconcileTime+"_sum", sub) - before.sum(reconcileTime+"_sum", sub)) / n
	}
	b.res.snapshotFetches = after.sum(snapshotFetches, map[string]string{"result": "full"})
	b.res.bundleFetches = after.sum(bundleFetchesMetric, nil)
	if b.res.peakRSS, err = b.installer.peakRSS(); err != nil {
		return err
	}
	var src v1alpha1.CatalogSource
	if err := b.client.Get(ctx, types.NamespacedName{Name: catalogName}, &src); err != nil {
		return err
	}
	if src.Status.Digest != b.res.digest {
		// The sample catalog does not change during a run; if it did,
		// fetches per digest would be miscounted.
		return fmt.Errorf("the catalog's digest changed during the run: %s, then %s", b.res.digest, src.Status.Digest)
	}
	return nil
}

// deploy applies Ferry's manifests (config/default) but for the two
// Deployments, runs them as processes, and creates the CatalogSource.
func (b *bench) deploy(ctx context.Context) error {
	kubectl := exec.CommandContext(ctx, "kubectl", "kustomize", filepath.Join(b.root, "config", "default"))
	var stderr bytes.Buffer
	kubectl.Stderr = &stderr
	out, err := kubectl.Output()
	if err != nil {
		return fmt.Errorf("kubectl kustomize config/default: %w\n%s", err, stderr.String())
	}
	m, err := asdeployed.Parse(bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("config/default: %w", err)
	}
	err = asdeployed.Apply(ctx, b.admin, m.Objects,
		asdeployed.Skip(asdeployed.IsDeployment(asdeployed.Namespace, asdeployed.InstallerDeployment)),
		asdeployed.Skip(asdeployed.IsDeployment(asdeployed.Namespace, asdeployed.CatalogdDeployment)))
	if err != nil {
		return fmt.Errorf("config/default: %w", err)
	}
	addrs := make([]string, 4)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return err
		}
	}
	grpcAddr, catalogdMetrics, installerMetrics, installerProbes := addrs[0], addrs[1], addrs[2], addrs[3]
	b.catalogd, err = startDeployed(ctx, b.admin, m, b.c.dir, deployedSpec{
		name: "catalogd", binary: filepath.Join(b.binDir, "catalogd"), deployment: asdeployed.CatalogdDeployment,
		rewrite: []asdeployed.CommandOption{asdeployed.WithFlag("--listen", grpcAddr), asdeployed.WithFlag("--metrics-listen", catalogdMetrics)},
	})
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, b.catalogd, "http://"+catalogdMetrics+"/readyz", 2*time.Minute); err != nil {
		return err
	}
	b.installer, err = startDeployed(ctx, b.admin, m, b.c.dir, deployedSpec{
		name: "installer", binary: filepath.Join(b.binDir, "installer"), deployment: asdeployed.InstallerDeployment,
		rewrite: []asdeployed.CommandOption{
			asdeployed.WithFlag("--metrics-bind-address", installerMetrics),
			asdeployed.WithFlag("--health-probe-bind-address", installerProbes),
		},
		extraArgs: b.c.installerArgs,
	})
	if err != nil {
		return err
	}
	b.installerMetrics = "http://" + installerMetrics + "/metrics"
	if err := waitHTTP(ctx, b.installer, "http://"+installerProbes+"/readyz", 2*time.Minute); err != nil {
		return err
	}
	src := &v1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: catalogName},
		Spec:       v1alpha1.CatalogSourceSpec{Address: grpcAddr, TLS: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true}},
	}
	if err := b.client.Create(ctx, src); err != nil {
		return fmt.Errorf("creating CatalogSource %s: %w", catalogName, err)
	}
	return b.poll(ctx, "CatalogSource "+catalogName+" to be Connected", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		if err := b.installer.alive(); err != nil {
			return false, "", err
		}
		if err := b.client.Get(ctx, types.NamespacedName{Name: catalogName}, src); err != nil {
			return false, err.Error(), nil //nolint:nilerr // a failed list is retried until the deadline, which names it
		}
		b.res.digest = src.Status.Digest
		return src.Status.Digest != "" && meta.IsStatusConditionTrue(src.Status.Conditions, v1alpha1.TypeConnected), fmt.Sprintf("status %+v", src.Status), nil
	})
}

// waitInstalled waits until every namespace's Subscription is Installed.
func (b *bench) waitInstalled(ctx context.Context, nss []string) error {
	want := map[string]bool{}
	for _, ns := range nss {
		want[ns] = true
	}
	return b.poll(ctx, "every Subscription to be Installed", b.c.phaseTimeout, func(ctx context.Context) (bool, string, error) {
		if err := b.installer.alive(); err != nil {
			return false, "", err
		}
		var list v1alpha1.SubscriptionList
		if err := b.client.List(ctx, &list); err != nil {
			return false, err.Error(), nil //nolint:nilerr // a failed list is retried until the deadline, which names it
		}
		done := 0
		states := map[string]int{}
		var stuck *v1alpha1.Subscription
		for i := range list.Items {
			s := &list.Items[i]
			if !want[s.Namespace] || s.Name != subscriptionName {
				continue
			}
			if meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeInstalled) {
				done++
				continue
			}
			states[string(s.Status.State)]++
			if stuck == nil {
				stuck = s
			}
		}
		b.installedSoFar = done
		if done == len(nss) {
			return true, "", nil
		}
		why := fmt.Sprintf("%d of %d Installed; the others by state: %s", done, len(nss), describeCounts(states))
		if stuck != nil {
			why += fmt.Sprintf("; e.g. %s/%s: %s", stuck.Namespace, stuck.Name, describeConditions(stuck.Status.Conditions))
		}
		return false, why, nil
	})
}

// poll calls check every pollInterval until it is done, fails or timeout
// passes; it logs progress every 10 s and names the last state at the
// deadline.
func (b *bench) poll(ctx context.Context, what string, timeout time.Duration, check func(context.Context) (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lastLog := time.Now()
	for {
		done, why, err := check(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return nil
		}
		if time.Since(lastLog) >= 10*time.Second {
			logf("waiting for %s: %s", what, why)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: not done after %v: %s", what, timeout, why)
		case <-time.After(pollInterval):
		}
	}
}

func namespaces(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i+1)
	}
	return out
}

// parallel runs fn for every item, workers at a time, and stops at the
// first error.
func parallel(ctx context.Context, workers int, items []string, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(workers, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				if err := fn(ctx, it); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func describeCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts = append(parts, fmt.Sprintf("%s=%d", name, m[k]))
	}
	return strings.Join(parts, " ")
}

func describeConditions(cs []metav1.Condition) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	if len(parts) == 0 {
		return "no conditions yet"
	}
	return strings.Join(parts, "; ")
}

// loadAverage is the 1-minute load average, or "?" when unreadable.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// newNamespace is one of the floor's namespaces.
func newNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"ferry.dev/bench": "floor"}}}
}
