package subscription

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/blang/semver/v4"
	"k8s.io/client-go/discovery"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/lru"
	"github.com/ferrydev/ferry/internal/resolver"
)

// Defaults of the Kubernetes version check.
const (
	// DefaultKubeVersionRefresh is how long the cluster's Kubernetes
	// version, read from discovery, is used before it is read again.
	DefaultKubeVersionRefresh = 10 * time.Minute
	// MaxKubeVersionProbes is how many resolver targets one reconcile
	// fetches to learn their minimum Kubernetes version, each time one does
	// not fit the cluster and the resolver is asked again. What is learned
	// is kept (minKubeCacheBytes), so the next reconcile goes on from there.
	MaxKubeVersionProbes = 16
	// minKubeCacheBytes bounds what is kept of the bundles' minimum
	// Kubernetes versions (about 100 bytes an entry).
	minKubeCacheBytes = 1 << 20
)

// KubeVersionSource tells the cluster's Kubernetes version, as a minimum
// Kubernetes version is compared with it (resolver.ClusterKubeVersion).
type KubeVersionSource interface {
	KubeVersion(ctx context.Context) (semver.Version, error)
}

// DiscoveryKubeVersion reads the API server's version from discovery once,
// and again when it is older than its refresh period. A failed read keeps
// the version read before; with none, it is the error.
type DiscoveryKubeVersion struct {
	client  discovery.ServerVersionInterface
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	version semver.Version
	readAt  time.Time
	read    bool
}

// NewDiscoveryKubeVersion reads the version from c every refresh at most;
// DefaultKubeVersionRefresh when refresh is not positive.
func NewDiscoveryKubeVersion(c discovery.ServerVersionInterface, refresh time.Duration) *DiscoveryKubeVersion {
	if refresh <= 0 {
		refresh = DefaultKubeVersionRefresh
	}
	return &DiscoveryKubeVersion{client: c, refresh: refresh, now: time.Now}
}

// KubeVersion returns the cluster's version, major.minor.patch.
func (d *DiscoveryKubeVersion) KubeVersion(context.Context) (semver.Version, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.read && d.now().Sub(d.readAt) < d.refresh {
		return d.version, nil
	}
	info, err := d.client.ServerVersion()
	if err == nil {
		var v semver.Version
		if v, err = resolver.ClusterKubeVersion(info.GitVersion); err == nil {
			d.version, d.readAt, d.read = v, d.now(), true
			return v, nil
		}
	}
	if d.read {
		// Keep the last version read; ask again at the next call.
		return d.version, nil
	}
	return semver.Version{}, fmt.Errorf("reading the cluster's Kubernetes version: %w", err)
}

// bundleKey names one bundle's content: its manifests digest, as the
// catalog announced it and the manifests fetched hash to.
type bundleKey struct{ catalog, pkg, bundle, manifestsDigest string }

// minKubeVersions is what the installer learned of bundles' minimum
// Kubernetes versions from the manifests it fetched, bounded.
type minKubeVersions struct {
	once  sync.Once
	cache *lru.Cache[bundleKey, string]
}

func (m *minKubeVersions) get() *lru.Cache[bundleKey, string] {
	m.once.Do(func() { m.cache = lru.New[bundleKey, string](minKubeCacheBytes) })
	return m.cache
}

// learn records the minimum of a bundle whose manifests were fetched.
func (m *minKubeVersions) learn(catalogName, pkg, bundle string, ms []catalog.Manifest) {
	min, err := install.MinKubeVersion(ms)
	if err != nil {
		return // Render says what is wrong with the bundle
	}
	k := bundleKey{catalogName, pkg, bundle, catalog.ManifestsDigest(ms)}
	m.get().Put(k, min, int64(len(k.catalog)+len(k.pkg)+len(k.bundle)+len(k.manifestsDigest)+len(min)+32))
}

// lookup is resolver.Request.MinKubeVersion.
func (m *minKubeVersions) lookup(catalogName string, b *catalog.Bundle) (string, bool) {
	if b.ManifestsDigest() == "" {
		return "", false
	}
	return m.get().Get(bundleKey{catalogName, b.Package, b.Name, b.ManifestsDigest()})
}

// fetched are the manifests of the resolver's last target, fetched to
// learn its minimum Kubernetes version, for the render to use.
type fetched struct {
	catalog, bundle string
	manifests       []catalog.Manifest
	err             error
}

// kubeVersion is the cluster's version; nil without a source.
func (r *Reconciler) kubeVersion(ctx context.Context) (*semver.Version, error) {
	if r.KubeVersion == nil {
		return nil, nil
	}
	v, err := r.KubeVersion.KubeVersion(ctx)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// probeTarget fetches the manifests of the decision's target when its
// minimum Kubernetes version is not known yet, learns it, and reports
// whether it does not fit the cluster, so that the resolver is asked
// again (it then passes the target over). What was fetched is kept in f
// for the render.
func (r *Reconciler) probeTarget(ctx context.Context, f *facts, snaps []resolver.Snapshot, kube semver.Version) bool {
	d := f.resolution
	if d == nil || d.Target == nil || d.Status == resolver.StatusUpToDate {
		return false
	}
	t := d.Target
	b := bundleOf(snaps, t.Catalog, t.Package, t.Bundle)
	if b == nil {
		return false
	}
	if _, known := r.minKube.lookup(t.Catalog, b); known {
		return false
	}
	ms, err := r.Catalogs.Manifests(ctx, t.Catalog, t.Package, t.Bundle)
	f.fetched = &fetched{catalog: t.Catalog, bundle: t.Bundle, manifests: ms, err: err}
	if err != nil {
		return false // the render reports it
	}
	r.minKube.learn(t.Catalog, t.Package, t.Bundle, ms)
	min, known := r.minKube.lookup(t.Catalog, b)
	if !known {
		// The manifests do not hash to what the catalog announced (the
		// store refuses those) or carry no readable CSV: Render says why.
		return false
	}
	return kubeRefusal(min, kube) != nil
}

func bundleOf(snaps []resolver.Snapshot, catalogName, pkg, bundle string) *catalog.Bundle {
	for _, s := range snaps {
		if s.Name != catalogName || s.Catalog == nil {
			continue
		}
		if p := s.Catalog.Package(pkg); p != nil {
			return p.Bundle(bundle)
		}
	}
	return nil
}

// KubeVersionError means a bundle requires a newer Kubernetes than the
// cluster's, or declares a minimum that is not a version. Nothing of it is
// applied.
type KubeVersionError struct {
	// Bundle is the bundle (CSV) name.
	Bundle string
	// MinKubeVersion is its spec.minKubeVersion as written.
	MinKubeVersion string
	// Cluster is the cluster's version.
	Cluster semver.Version
	// Err is why the minimum is not a version; nil when it is one above
	// the cluster's.
	Err error
}

func (e *KubeVersionError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("ClusterServiceVersion %s: spec.minKubeVersion %q is not a version: %v", e.Bundle, e.MinKubeVersion, e.Err)
	}
	return fmt.Sprintf("ClusterServiceVersion %s requires Kubernetes ≥ %s (spec.minKubeVersion), the cluster is %s", e.Bundle, e.MinKubeVersion, e.Cluster)
}

func (e *KubeVersionError) Unwrap() error { return e.Err }

// kubeRefusal is why a minimum does not fit the cluster; nil when it does.
func kubeRefusal(min string, kube semver.Version) error {
	if min == "" {
		return nil
	}
	v, err := resolver.ParseMinKubeVersion(min)
	switch {
	case err != nil:
		return &KubeVersionError{MinKubeVersion: min, Cluster: kube, Err: err}
	case v.GT(kube):
		return &KubeVersionError{MinKubeVersion: min, Cluster: kube}
	}
	return nil
}

// checkKubeVersion refuses manifests whose CSV requires a newer Kubernetes
// than the cluster's: the resolver passes such a bundle over once its
// minimum is known, and this is the check for one it could not know yet.
func checkKubeVersion(bundle string, ms []catalog.Manifest, kube *semver.Version) error {
	if kube == nil {
		return nil
	}
	min, err := install.MinKubeVersion(ms)
	var notString *install.MinKubeVersionTypeError
	switch {
	case errors.As(err, &notString):
		return &install.InvalidBundleError{Bundle: bundle, Reason: err.Error()}
	case err != nil:
		return nil //nolint:nilerr // Render says what else is wrong with the bundle
	}
	err = kubeRefusal(min, *kube)
	var kerr *KubeVersionError
	if errors.As(err, &kerr) {
		kerr.Bundle = bundle
	}
	return err
}

// kubeVersionReason is the condition reason of a KubeVersionError.
const kubeVersionReason = v1alpha1.ReasonUnsatisfiable
