package subscription

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/kinds"
)

// servingMapper is a RESTMapper whose served kinds a test adds while it is
// read.
type servingMapper struct {
	mu sync.Mutex
	m  *meta.DefaultRESTMapper
}

func (s *servingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.RESTMapping(gk, versions...)
}

func (s *servingMapper) serve(gvk schema.GroupVersionKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.Add(gvk, meta.RESTScopeNamespace)
}

// The other methods are not used by driftWatcher.
func (s *servingMapper) KindFor(schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	panic("not used")
}
func (s *servingMapper) KindsFor(schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	panic("not used")
}
func (s *servingMapper) ResourceFor(schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	panic("not used")
}
func (s *servingMapper) ResourcesFor(schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	panic("not used")
}
func (s *servingMapper) RESTMappings(schema.GroupKind, ...string) ([]*meta.RESTMapping, error) {
	panic("not used")
}
func (s *servingMapper) ResourceSingularizer(string) (string, error) { panic("not used") }

func optionalKinds() []kinds.Kind {
	var out []kinds.Kind
	for _, k := range kinds.All() {
		if k.Optional {
			out = append(out, k)
		}
	}
	return out
}

// TestDriftWatcherStartsWatchesWhenServed: a kind whose API is absent is not
// watched, and no error stops the watcher; once served, an inventory naming
// the kind starts its watch at once, at the version discovery serves, and
// the watcher ends when every kind is watched.
func TestDriftWatcherStartsWatchesWhenServed(t *testing.T) {
	// Discovery's preferred versions; no kind of them is served yet.
	mapper := &servingMapper{m: meta.NewDefaultRESTMapper([]schema.GroupVersion{{Group: kinds.GroupMonitoring, Version: "v1"}, {Group: kinds.GroupAutoscaling, Version: "v1beta2"}})}
	var mu sync.Mutex
	var watched []schema.GroupVersionKind
	failOnce := map[schema.GroupKind]bool{{Group: kinds.GroupAutoscaling, Kind: "VerticalPodAutoscaler"}: true}
	watch := func(gvk schema.GroupVersionKind) error {
		mu.Lock()
		defer mu.Unlock()
		if failOnce[gvk.GroupKind()] {
			delete(failOnce, gvk.GroupKind())
			return errors.New("watch refused")
		}
		watched = append(watched, gvk)
		return nil
	}
	w := newDriftWatcher(logr.Discard(), mapper, time.Hour, watch, optionalKinds())
	if left := w.startServed(); left != len(optionalKinds()) || len(watched) != 0 {
		t.Fatalf("nothing served: %d kinds left, watched %v", left, watched)
	}

	serviceMonitor := schema.GroupVersionKind{Group: kinds.GroupMonitoring, Version: "v1", Kind: "ServiceMonitor"}
	vpa := schema.GroupVersionKind{Group: kinds.GroupAutoscaling, Version: "v1beta2", Kind: "VerticalPodAutoscaler"}
	mapper.serve(serviceMonitor)
	mapper.serve(vpa)
	// An inventory without a pending kind asks nothing.
	w.noteInventory(context.Background(), &v1alpha1.Subscription{Status: v1alpha1.SubscriptionStatus{Inventory: []v1alpha1.ObjectReference{{Version: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "c"}}}})
	if len(w.poke) != 0 {
		t.Fatal("an inventory of watched kinds asked for a look-up")
	}
	w.noteInventory(context.Background(), &v1alpha1.Subscription{Status: v1alpha1.SubscriptionStatus{Inventory: []v1alpha1.ObjectReference{{Group: kinds.GroupMonitoring, Version: "v1", Kind: "ServiceMonitor", Namespace: "ns", Name: "m"}}}})
	if len(w.poke) != 1 {
		t.Fatal("an inventory naming ServiceMonitor did not ask for a look-up")
	}
	// One look-up: ServiceMonitor and the VPA are served, the VPA's watch
	// fails once and is tried again on the next look-up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if left := w.startServed(); left != 2 {
		t.Fatalf("after the first look-up %d kinds are left, want 2 (PrometheusRule, not served; the VPA, whose watch failed)", left)
	}
	mapper.serve(schema.GroupVersionKind{Group: kinds.GroupMonitoring, Version: "v1", Kind: "PrometheusRule"})
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the watcher did not end once every kind was watched")
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[schema.GroupVersionKind]bool{serviceMonitor: true, vpa: true, {Group: kinds.GroupMonitoring, Version: "v1", Kind: "PrometheusRule"}: true}
	if len(watched) != len(want) {
		t.Fatalf("watched %v, want %v", watched, want)
	}
	for _, gvk := range watched {
		if !want[gvk] {
			t.Errorf("watched %v, want %v", gvk, want)
		}
	}
}

func TestAbsent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no kind match", &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}}, true},
		{"group version not found", &apiutil.ErrResourceDiscoveryFailed{{Group: "monitoring.coreos.com", Version: "v1"}: apierrors.NewNotFound(schema.GroupResource{}, "")}, true},
		{"group version without the resource", &apiutil.ErrResourceDiscoveryFailed{{Group: "monitoring.coreos.com", Version: "v1"}: &meta.NoResourceMatchError{}}, true},
		{"discovery unreachable", &apiutil.ErrResourceDiscoveryFailed{{Group: "monitoring.coreos.com", Version: "v1"}: errors.New("connection refused")}, false},
		{"another error", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := absent(tt.err); got != tt.want {
				t.Errorf("absent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestResynced: only an informer's periodic resync, which hands over the
// object unchanged, passes; real changes reach the controller through the
// other watches of Subscriptions.
func TestResynced(t *testing.T) {
	sub := func(rv string) *v1alpha1.Subscription {
		s := &v1alpha1.Subscription{}
		s.ResourceVersion = rv
		return s
	}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"resync: the same version", resynced.Update(event.UpdateEvent{ObjectOld: sub("7"), ObjectNew: sub("7")}), true},
		{"a change", resynced.Update(event.UpdateEvent{ObjectOld: sub("7"), ObjectNew: sub("8")}), false},
		{"a creation", resynced.Create(event.CreateEvent{Object: sub("7")}), false},
		{"a deletion", resynced.Delete(event.DeleteEvent{Object: sub("7")}), false},
		{"a generic event", resynced.Generic(event.GenericEvent{Object: sub("7")}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("passed = %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestOwnerOf: an installed object names its Subscription by the owner
// annotation, exactly, else by the owner labels; an object without either
// enqueues nothing.
func TestOwnerOf(t *testing.T) {
	obj := func(labels, annotations map[string]string) *metav1.PartialObjectMetadata {
		m := &metav1.PartialObjectMetadata{}
		m.SetLabels(labels)
		m.SetAnnotations(annotations)
		return m
	}
	long := strings.Repeat("x", 70)
	tests := []struct {
		name string
		obj  *metav1.PartialObjectMetadata
		want []reconcile.Request
	}{
		{"annotation", obj(map[string]string{install.LabelOwnerName: "short", install.LabelOwnerNamespace: "ns"}, map[string]string{install.AnnotationOwner: "ns/" + long}),
			[]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: long}}}},
		{"labels", obj(map[string]string{install.LabelOwnerName: "sub", install.LabelOwnerNamespace: "ns"}, nil),
			[]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "sub"}}}},
		{"malformed annotation falls back to the labels", obj(map[string]string{install.LabelOwnerName: "sub", install.LabelOwnerNamespace: "ns"}, map[string]string{install.AnnotationOwner: "no-slash"}),
			[]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "sub"}}}},
		{"neither", obj(map[string]string{install.LabelManagedBy: install.ManagedByValue}, nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownerOf(context.Background(), tt.obj); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ownerOf = %v, want %v", got, tt.want)
			}
		})
	}
}
