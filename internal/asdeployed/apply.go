package asdeployed

import (
	"context"
	"errors"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// DefaultFieldManager is the field manager Apply writes with.
const DefaultFieldManager = "ferry-asdeployed"

type applyOptions struct {
	fieldManager     string
	skip             []func(*unstructured.Unstructured) bool
	establishTimeout time.Duration
}

// ApplyOption configures Apply.
type ApplyOption func(*applyOptions)

// WithFieldManager sets the server-side apply field manager (default
// DefaultFieldManager).
func WithFieldManager(name string) ApplyOption {
	return func(o *applyOptions) { o.fieldManager = name }
}

// Skip leaves out the objects for which skip is true, e.g. the Deployments
// whose containers run as local processes instead.
func Skip(skip func(*unstructured.Unstructured) bool) ApplyOption {
	return func(o *applyOptions) { o.skip = append(o.skip, skip) }
}

// IsDeployment matches the Deployment namespace/name.
func IsDeployment(namespace, name string) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		gvk := u.GroupVersionKind()
		return gvk.Group == "apps" && gvk.Kind == "Deployment" && u.GetNamespace() == namespace && u.GetName() == name
	}
}

// WithEstablishTimeout bounds the wait for applied CRDs to be Established,
// and for applied RBAC to be in force (default one minute).
func WithEstablishTimeout(d time.Duration) ApplyOption {
	return func(o *applyOptions) { o.establishTimeout = d }
}

// Apply server-side applies objs with force: Namespaces and
// CustomResourceDefinitions first, waiting until the CRDs are Established,
// then the others in order, and returns once the ServiceAccounts that
// applied bindings name are allowed what the applied roles grant them (the
// same bound). An error names the object.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, opts ...ApplyOption) error {
	o := applyOptions{fieldManager: DefaultFieldManager, establishTimeout: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	var first, crds, rest []*unstructured.Unstructured
	for _, u := range objs {
		if skipped(o.skip, u) {
			continue
		}
		gvk := u.GroupVersionKind()
		switch {
		case gvk.Group == "" && gvk.Kind == "Namespace":
			first = append(first, u)
		case gvk.Group == apiextensionsv1.GroupName && gvk.Kind == "CustomResourceDefinition":
			crds = append(crds, u)
		default:
			rest = append(rest, u)
		}
	}
	apply := func(list []*unstructured.Unstructured) error {
		var errs []error
		for _, u := range list {
			if err := applyOne(ctx, dyn, mapper, o.fieldManager, u); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if err := apply(append(first, crds...)); err != nil {
		return err
	}
	if len(crds) > 0 {
		if err := waitEstablished(ctx, dyn, crds, o.establishTimeout); err != nil {
			return err
		}
		mapper.Reset()
	}
	if err := apply(rest); err != nil {
		return err
	}
	return waitGranted(ctx, cfg, grants(rest), o.establishTimeout)
}

func skipped(skip []func(*unstructured.Unstructured) bool, u *unstructured.Unstructured) bool {
	for _, s := range skip {
		if s(u) {
			return true
		}
	}
	return false
}

func describe(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s %s", u.GetKind(), u.GetName())
}

func applyOne(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, fieldManager string, u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("applying %s: %w", describe(u), err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if u.GetNamespace() == "" {
			return fmt.Errorf("applying %s: a %s is namespaced and the manifest names no namespace", describe(u), gvk.Kind)
		}
		ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	if _, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying %s: %w", describe(u), err)
	}
	return nil
}

func waitEstablished(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured, timeout time.Duration) error {
	res := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	for _, u := range crds {
		var last string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			live, err := dyn.Resource(res).Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil //nolint:nilerr // not there yet: keep polling, report the last error at the deadline
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, &crd); err != nil {
				return false, err
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established {
					last = fmt.Sprintf("Established=%s: %s", c.Status, c.Message)
					return c.Status == apiextensionsv1.ConditionTrue, nil
				}
			}
			last = "no Established condition yet"
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("the CustomResourceDefinition %s is not Established after %v (%s): %w", u.GetName(), timeout, last, err)
		}
	}
	return nil
}
