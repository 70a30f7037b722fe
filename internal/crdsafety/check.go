package crdsafety

import (
	"context"
	"errors"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultPageSize is the number of custom resources Check lists per request
// when Checker.PageSize is not set.
const DefaultPageSize = 500

// Checker checks a CRD change against the live cluster.
type Checker struct {
	// Client lists the custom resources. It must read from the API server
	// (not from a cache), or paging and completeness are not guaranteed; it
	// needs list permission on the CRD's resource in all namespaces.
	Client client.Client
	// PageSize is the Limit of each list request (DefaultPageSize when 0).
	PageSize int64
}

// Check decides whether the live CRD old may be replaced by new. Pass the
// CRD as read from the API server (its status.storedVersions matter) or nil
// when it is not installed yet (nothing to check). It returns the static
// findings of Diff followed by one finding per field of each existing
// custom resource that does not validate against the new schema.
//
// PolicyNone returns an empty Result without any request; PolicyWarn never
// blocks; PolicyStrict (or "") blocks when a finding is blocking. An error
// means the check could not be completed (e.g. listing failed); the caller
// should then treat the change as not checked.
func (c *Checker) Check(ctx context.Context, old, new *apiextensionsv1.CustomResourceDefinition, policy Policy) (Result, error) {
	policy, err := ParsePolicy(string(policy))
	if err != nil {
		return Result{}, err
	}
	if policy == PolicyNone || old == nil {
		return Result{}, nil
	}
	if new == nil {
		return Result{}, errors.New("crdsafety: the new CRD is nil")
	}
	if old.Name != new.Name {
		return Result{}, fmt.Errorf("crdsafety: cannot compare CRD %s with CRD %s", old.Name, new.Name)
	}
	res := Result{Findings: Diff(old, new)}
	objFindings, n, err := c.checkObjects(ctx, old, new)
	if err != nil {
		return Result{}, fmt.Errorf("crdsafety: CRD %s: %w", new.Name, err)
	}
	res.Findings = append(res.Findings, objFindings...)
	res.ObjectsChecked = n
	if policy == PolicyStrict {
		for _, f := range res.Findings {
			if f.Blocking() {
				res.Blocked = true
				break
			}
		}
	}
	return res, nil
}

// target is one version of the new CRD the existing objects are checked
// against.
type target struct {
	name    string
	storage bool
	newV    *objectValidator
	oldV    *objectValidator // nil when the old CRD has no such version
}

func findVersion(crd *apiextensionsv1.CustomResourceDefinition, name string) *apiextensionsv1.CustomResourceDefinitionVersion {
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == name {
			return &crd.Spec.Versions[i]
		}
	}
	return nil
}

func converts(crd *apiextensionsv1.CustomResourceDefinition) bool {
	return crd.Spec.Conversion != nil && crd.Spec.Conversion.Strategy != "" &&
		crd.Spec.Conversion.Strategy != apiextensionsv1.NoneConverter
}

// listVersion returns the version of the live CRD to list objects with: the
// storage version when it is served, else the first served one.
func listVersion(crd *apiextensionsv1.CustomResourceDefinition) string {
	first := ""
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		if v.Storage {
			return v.Name
		}
		if first == "" {
			first = v.Name
		}
	}
	return first
}

func (c *Checker) checkObjects(ctx context.Context, old, new *apiextensionsv1.CustomResourceDefinition) ([]Finding, int, error) {
	var targets []*target
	for i := range new.Spec.Versions {
		nv := &new.Spec.Versions[i]
		if !nv.Served && !nv.Storage {
			continue
		}
		t := &target{name: nv.Name, storage: nv.Storage}
		var err error
		if t.newV, err = newObjectValidator(nv); err != nil {
			return nil, 0, fmt.Errorf("new CRD: %w", err)
		}
		if t.oldV, err = newObjectValidator(findVersion(old, nv.Name)); err != nil {
			return nil, 0, fmt.Errorf("live CRD: %w", err)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil, 0, nil
	}

	var findings []Finding
	if !converts(old) && !converts(new) {
		// Without conversion every version serves the same content, so one
		// list is enough; each object is checked against every version.
		lv := listVersion(old)
		if lv == "" {
			return nil, 0, errors.New("the live CRD serves no version; cannot list its objects")
		}
		n, err := c.list(ctx, old, lv, func(u *unstructured.Unstructured) {
			for _, t := range targets {
				findings = append(findings, c.checkObject(ctx, new, t, u)...)
			}
		})
		return findings, n, err
	}

	// With a conversion webhook the API server converts each object to the
	// version it is listed as; versions the live CRD does not serve cannot
	// be obtained before the change and are not checked.
	total := 0
	for _, t := range targets {
		if v := findVersion(old, t.name); v == nil || !v.Served {
			continue
		}
		n, err := c.list(ctx, old, t.name, func(u *unstructured.Unstructured) {
			findings = append(findings, c.checkObject(ctx, new, t, u)...)
		})
		if err != nil {
			return nil, 0, err
		}
		total = max(total, n)
	}
	return findings, total, nil
}

// list calls fn for each object of crd listed as version, page by page.
func (c *Checker) list(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition, version string, fn func(*unstructured.Unstructured)) (int, error) {
	if c.Client == nil {
		return 0, errors.New("Checker.Client is nil")
	}
	limit := c.PageSize
	if limit <= 0 {
		limit = DefaultPageSize
	}
	listKind := crd.Spec.Names.ListKind
	if listKind == "" {
		listKind = crd.Spec.Names.Kind + "List"
	}
	gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: version, Kind: listKind}
	n := 0
	cont := ""
	for {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk)
		opts := []client.ListOption{client.Limit(limit)}
		if cont != "" {
			opts = append(opts, client.Continue(cont))
		}
		if err := c.Client.List(ctx, list, opts...); err != nil {
			return n, fmt.Errorf("listing %s: %w", gvk.GroupVersion().WithResource(crd.Spec.Names.Plural), err)
		}
		for i := range list.Items {
			fn(&list.Items[i])
			n++
		}
		cont = list.GetContinue()
		if cont == "" {
			return n, nil
		}
	}
}

func objectKey(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns + "/" + u.GetName()
	}
	return u.GetName()
}

func (c *Checker) checkObject(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition, t *target, u *unstructured.Unstructured) []Finding {
	obj := u.UnstructuredContent()
	apiVersion := schema.GroupVersion{Group: crd.Spec.Group, Version: t.name}.String()
	if u.GetAPIVersion() != apiVersion {
		// Without conversion only apiVersion differs between versions.
		obj = shallowWithAPIVersion(obj, apiVersion)
	}
	errs := t.newV.validate(ctx, obj)
	if len(errs) == 0 {
		return nil
	}
	var before map[string]bool
	if t.oldV != nil {
		if oldErrs := t.oldV.validate(ctx, obj); len(oldErrs) > 0 {
			before = map[string]bool{}
			for _, e := range oldErrs {
				before[e.Field] = true
			}
		}
	}
	as := "served as " + t.name
	if t.storage {
		as = "stored as " + t.name
	}
	key := objectKey(u)
	out := make([]Finding, 0, len(errs))
	for _, e := range errs {
		f := Finding{CRD: crd.Name, Version: t.name, Field: e.Field, Object: key, Kind: KindInvalidObject}
		what := "is invalid under the new schema"
		if before[e.Field] {
			f.Kind = KindAlreadyInvalidObject
			what = "is invalid under the new schema, as it already was under the old one"
		}
		f.Message = fmt.Sprintf("CRD %s: %s %s (%s) %s: %s", crd.Name, crd.Spec.Names.Kind, key, as, what, errorText(e))
		out = append(out, f)
	}
	return out
}

func errorText(e *field.Error) string {
	if e.Field == "" {
		return e.ErrorBody()
	}
	return e.Error()
}

func shallowWithAPIVersion(obj map[string]any, apiVersion string) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	out["apiVersion"] = apiVersion
	return out
}
