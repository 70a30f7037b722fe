package framework

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metadatafake "k8s.io/client-go/metadata/fake"
)

var (
	subscriptions = schema.GroupVersionResource{Group: "operators.ferry.dev", Version: "v1alpha1", Resource: "subscriptions"}
	pods          = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	configMaps    = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

func object(gvr schema.GroupVersionResource, kind, ns, name string, finalizers ...string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: gvr.GroupVersion().String(), Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Finalizers: finalizers},
	}
}

// TestHoldingFinalizers: only kinds with an object in the namespace that
// holds a finalizer are left to wait for; other namespaces do not count.
func TestHoldingFinalizers(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		objects     []runtime.Object
		wantKinds   []schema.GroupVersionResource
		wantObjects []string
	}{
		{
			name:    "nothing holds a finalizer",
			objects: []runtime.Object{object(pods, "Pod", "e2e-a", "web-1"), object(subscriptions, "Subscription", "e2e-a", "done")},
		},
		{
			name: "a Subscription being uninstalled",
			objects: []runtime.Object{
				object(pods, "Pod", "e2e-a", "web-1"),
				object(subscriptions, "Subscription", "e2e-a", "lighthouse", "operators.ferry.dev/uninstall"),
				object(subscriptions, "Subscription", "e2e-a", "signal-store"),
			},
			wantKinds:   []schema.GroupVersionResource{subscriptions},
			wantObjects: []string{"subscriptions.operators.ferry.dev/lighthouse [operators.ferry.dev/uninstall]"},
		},
		{
			name:    "finalizers in another namespace",
			objects: []runtime.Object{object(configMaps, "ConfigMap", "e2e-b", "kept", "example.com/hold")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Framework{}
			f.metaOnce.Do(func() { f.meta = metadatafake.NewSimpleMetadataClient(scheme, tt.objects...) })
			kinds, objects, err := f.holdingFinalizers(context.Background(), "e2e-a", []schema.GroupVersionResource{pods, configMaps, subscriptions})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(kinds, tt.wantKinds) || !slices.Equal(objects, tt.wantObjects) {
				t.Errorf("kinds %v, objects %q; want %v, %q", kinds, objects, tt.wantKinds, tt.wantObjects)
			}
		})
	}
}

// TestListable: listable kinds of a discovery answer, no subresources.
func TestListable(t *testing.T) {
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"list", "delete"}},
			{Name: "pods/status", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "list", "patch"}},
			{Name: "bindings", Namespaced: true, Kind: "Binding", Verbs: metav1.Verbs{"create"}},
		}},
		{GroupVersion: "operators.ferry.dev/v1alpha1", APIResources: []metav1.APIResource{
			{Name: "subscriptions", Namespaced: true, Kind: "Subscription", Verbs: metav1.Verbs{"list", "delete"}},
		}},
	}
	got, err := listable(lists)
	if err != nil {
		t.Fatal(err)
	}
	if want := []schema.GroupVersionResource{pods, subscriptions}; !slices.Equal(got, want) {
		t.Errorf("listable %v, want %v", got, want)
	}
	if _, err := listable([]*metav1.APIResourceList{{GroupVersion: "a/b/c"}}); err == nil {
		t.Error("a bad group version was accepted")
	}
}

// TestStopLeftovers: the cluster of a run whose process still holds its
// folder's lock is left alone (make test runs two end-to-end runs at once);
// the one of a run whose lock is free is stopped (its PID files removed).
func TestStopLeftovers(t *testing.T) {
	base := t.TempDir()
	pidFile := func(run string) string { return filepath.Join(base, run, "cluster", "etcd.pid") }
	for _, run := range []string{"run-live", "run-killed"} {
		if err := os.MkdirAll(filepath.Dir(pidFile(run)), 0o755); err != nil {
			t.Fatal(err)
		}
		// No process has this id: Down finds nothing to stop and only
		// removes the PID file.
		if err := os.WriteFile(pidFile(run), []byte("2147483646\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	live, err := lockOwner(filepath.Join(base, "run-live"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := lockOwner(filepath.Join(base, "run-live")); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("locking a held run folder again: %v, want EWOULDBLOCK", err)
	}

	stopLeftovers(base)

	if _, err := os.Stat(pidFile("run-live")); err != nil {
		t.Errorf("the cluster of the running run was stopped: %v", err)
	}
	if _, err := os.Stat(pidFile("run-killed")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster of the killed run was not stopped: PID file %v", err)
	}
}
