package install

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/kinds"
)

// ConversionFieldManagerSuffix is appended to the Applier's field manager
// for the server-side apply that sets a CRD's conversion webhook: the
// conversion is applied apart from the rest of the CRD, once the webhook's
// Deployment is available, and the CRD's own apply leaves it alone.
const ConversionFieldManagerSuffix = "-conversion"

// generated is what an Apply generated on the way: the serving
// certificates by Secret ("namespace/name"), and the webhooks it could not
// register yet.
type generated struct {
	certs    map[string]*servingCert
	deferred []v1alpha1.ObjectReference
	rotateAt time.Time
}

func (a *Applier) now() time.Time {
	if a.Clock != nil {
		return a.Clock()
	}
	return time.Now()
}

func (a *Applier) conversionManager() string { return a.fieldManager() + ConversionFieldManagerSuffix }

// isWebhookStep reports whether o is applied in the last step, once its
// Deployment is available: a webhook configuration, or a CRD's conversion
// webhook.
func isWebhookStep(o *unstructured.Unstructured) bool {
	if rankOf(o) == kinds.RankWebhook {
		return true
	}
	return isCRD(Ref(o)) && o.GetAnnotations()[AnnotationCAFrom] != ""
}

// fill returns the object to apply for o, with what Ferry generates at
// apply time: the certificate of a serving-certificate Secret (kept while
// valid), the CA hash on the pod template of a Deployment that mounts one,
// and no conversion on a CRD whose conversion webhook is applied later.
func (a *Applier) fill(ctx context.Context, o *unstructured.Unstructured, g *generated) (*unstructured.Unstructured, error) {
	ref := Ref(o)
	switch {
	case ref.Group == "" && ref.Kind == "Secret" && o.GetAnnotations()[AnnotationServingCertFor] != "":
		cert, err := a.servingCert(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("serving certificate %s: %w", describe(ref), err)
		}
		g.certs[ref.Namespace+"/"+ref.Name] = cert
		if g.rotateAt.IsZero() || cert.rotateAt.Before(g.rotateAt) {
			g.rotateAt = cert.rotateAt
		}
		out := o.DeepCopy()
		data := map[string]any{}
		for k, v := range cert.data() {
			data[k] = base64.StdEncoding.EncodeToString(v)
		}
		out.Object["data"] = data
		return out, nil
	case ref.Group == kinds.GroupApps && ref.Kind == "Deployment":
		vols, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
		var hashes []string
		for _, v := range vols {
			name, _, _ := unstructured.NestedString(asMap(v), "secret", "secretName")
			if cert := g.certs[ref.Namespace+"/"+name]; name != "" && cert != nil {
				hashes = append(hashes, cert.caHash())
			}
		}
		if len(hashes) == 0 {
			return o, nil
		}
		out := o.DeepCopy()
		ann, _, _ := unstructured.NestedStringMap(out.Object, "spec", "template", "metadata", "annotations")
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationCAHash] = strings.Join(hashes, ",")
		if err := unstructured.SetNestedStringMap(out.Object, ann, "spec", "template", "metadata", "annotations"); err != nil {
			return nil, err
		}
		return out, nil
	case isCRD(ref) && o.GetAnnotations()[AnnotationCAFrom] != "":
		out := o.DeepCopy()
		unstructured.RemoveNestedField(out.Object, "spec", "conversion")
		return out, nil
	}
	return o, nil
}

// servingCert returns the certificate for a serving-certificate Secret: the
// one the live Secret holds while it may be kept (see reuseServingCert),
// otherwise a new one.
func (a *Applier) servingCert(ctx context.Context, o *unstructured.Unstructured) (*servingCert, error) {
	service := o.GetAnnotations()[AnnotationServingCertFor]
	now := a.now()
	live := &corev1.Secret{}
	err := a.reader().Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}, live)
	switch {
	case apierrors.IsNotFound(err):
		return newServingCert(service, o.GetNamespace(), now, nil)
	case err != nil:
		return nil, fmt.Errorf("reading it: %w", err)
	}
	cert, err := reuseServingCert(live.Data, service, o.GetNamespace(), now)
	if err == nil {
		return cert, nil
	}
	return newServingCert(service, o.GetNamespace(), now, live.Data[SecretKeyCA])
}

// registerWebhooks applies the webhook configurations and CRD conversion
// webhooks of r whose Deployment is available, with the CA bundle of their
// Secret; the others are left as they are and listed in g.deferred. It
// removes the conversion webhook of r's other CRDs that Ferry had set.
func (a *Applier) registerWebhooks(ctx context.Context, r *Rendered, g *generated) error {
	var errs []error
	for _, o := range r.Objects {
		ref := Ref(o)
		if !isWebhookStep(o) {
			if isCRD(ref) {
				if err := a.releaseConversion(ctx, ref.Name, func(m metav1.Object) bool { return IsOwner(m, r.Owner) }); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		ann := o.GetAnnotations()
		depNS, depName, ok := strings.Cut(ann[AnnotationWebhookDeployment], "/")
		if !ok || depNS != r.Namespace || depName == "" {
			errs = append(errs, fmt.Errorf("%s: annotation %s is %q, not a Deployment of namespace %s", describe(ref), AnnotationWebhookDeployment, ann[AnnotationWebhookDeployment], r.Namespace))
			continue
		}
		cert := g.certs[ann[AnnotationCAFrom]]
		if secretNS, _, _ := strings.Cut(ann[AnnotationCAFrom], "/"); cert == nil || secretNS != r.Namespace {
			errs = append(errs, fmt.Errorf("%s: annotation %s names %q, not a certificate Secret this install generates", describe(ref), AnnotationCAFrom, ann[AnnotationCAFrom]))
			continue
		}
		dep := v1alpha1.ObjectReference{Group: kinds.GroupApps, Version: "v1", Kind: "Deployment", Namespace: depNS, Name: depName}
		msg, _, err := a.deploymentHealth(ctx, dep)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: reading its %s: %w", describe(ref), describe(dep), err))
			continue
		}
		caBundle := base64.StdEncoding.EncodeToString(cert.caBundle)
		if msg != "" {
			// Registered by a later apply, once the Deployment is available:
			// a webhook pointing at nothing would refuse what it matches.
			// One registered already only trusts a rotated CA bundle now,
			// which trusts the old certificate too (see newServingCert).
			g.deferred = append(g.deferred, ref)
			if err := a.refreshCABundle(ctx, ref, caBundle); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if isCRD(ref) {
			if err := a.applyConversion(ctx, o, caBundle); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		out, err := withCABundle(o, caBundle)
		if err != nil {
			return err
		}
		if err := a.applyOne(ctx, r, out); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshCABundle sets the CA bundle of a registered webhook configuration
// or CRD conversion webhook to caBundle and changes nothing else: it applies
// the live webhooks (or conversion) with the new caBundle, as the field
// manager that applied them, so that the fields keep one owner and a later
// apply can still remove them. Nothing is written when the object does not
// exist or already has caBundle.
func (a *Applier) refreshCABundle(ctx context.Context, ref v1alpha1.ObjectReference, caBundle string) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkOf(ref))
	err := a.reader().Get(ctx, client.ObjectKey{Name: ref.Name}, u)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", describe(ref), err)
	}
	patch := &unstructured.Unstructured{Object: map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}}
	manager := a.fieldManager()
	if isCRD(ref) {
		conv, _, _ := unstructured.NestedMap(u.Object, "spec", "conversion")
		have, _, _ := unstructured.NestedString(conv, "webhook", "clientConfig", "caBundle")
		if conv["strategy"] != "Webhook" || have == caBundle {
			return nil
		}
		if err := unstructured.SetNestedField(conv, caBundle, "webhook", "clientConfig", "caBundle"); err != nil {
			return fmt.Errorf("%s: %w", describe(ref), err)
		}
		patch.Object["metadata"] = map[string]any{"name": ref.Name}
		patch.Object["spec"] = map[string]any{"conversion": conv}
		manager = a.conversionManager()
	} else {
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		stale := false
		for _, h := range hooks {
			if have, _, _ := unstructured.NestedString(asMap(h), "clientConfig", "caBundle"); have != caBundle {
				stale = true
			}
		}
		if !stale {
			return nil
		}
		if patch, err = withCABundle(u, caBundle); err != nil {
			return err
		}
		// The live object as applied: what the server owns is left out.
		delete(patch.Object, "status")
		patch.Object["metadata"] = map[string]any{"name": ref.Name, "labels": toAnyMap(u.GetLabels()), "annotations": toAnyMap(u.GetAnnotations())}
	}
	if err := a.writer().Apply(ctx, client.ApplyConfigurationFromUnstructured(patch), client.FieldOwner(manager), client.ForceOwnership); err != nil {
		return fmt.Errorf("updating the CA bundle of %s: %w", describe(ref), err)
	}
	return nil
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// applyConversion applies the conversion webhook of a CRD, with the CA
// bundle, as the conversion field manager.
func (a *Applier) applyConversion(ctx context.Context, crd *unstructured.Unstructured, caBundle string) error {
	conv, ok, _ := unstructured.NestedMap(crd.Object, "spec", "conversion")
	if !ok {
		return fmt.Errorf("CRD %s: no spec.conversion to apply", crd.GetName())
	}
	if err := unstructured.SetNestedField(conv, caBundle, "webhook", "clientConfig", "caBundle"); err != nil {
		return fmt.Errorf("CRD %s: %w", crd.GetName(), err)
	}
	patch := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": crd.GetAPIVersion(), "kind": crd.GetKind(),
		"metadata": map[string]any{"name": crd.GetName()},
		"spec":     map[string]any{"conversion": conv},
	}}
	if err := a.writer().Apply(ctx, client.ApplyConfigurationFromUnstructured(patch), client.FieldOwner(a.conversionManager()), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying the conversion webhook of CRD %s: %w", crd.GetName(), err)
	}
	return nil
}

// releaseConversion removes the conversion webhook Ferry set on a CRD that
// owns accepts (the API server then defaults the strategy to None): an
// empty apply as the conversion field manager, made only when that manager
// holds fields of the CRD.
func (a *Applier) releaseConversion(ctx context.Context, name string, owns func(metav1.Object) bool) error {
	// Most CRDs have no conversion webhook: Client (the installer's cache)
	// says so without a request; only then are the field managers read.
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	err := a.Client.Get(ctx, client.ObjectKey{Name: name}, crd)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading CRD %s: %w", name, err)
	}
	if strategy, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy"); strategy != "Webhook" {
		return nil
	}
	ref := v1alpha1.ObjectReference{Group: groupAPIExtensions, Version: "v1", Kind: kindCRD, Name: name}
	m, err := a.getMeta(ctx, ref)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading CRD %s: %w", name, err)
	}
	if !owns(m) || m.GetDeletionTimestamp() != nil {
		return nil
	}
	held := false
	for _, f := range m.GetManagedFields() {
		if f.Manager == a.conversionManager() && f.Operation == metav1.ManagedFieldsOperationApply {
			held = true
		}
	}
	if !held {
		return nil
	}
	patch := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": kindCRD, "metadata": map[string]any{"name": name},
	}}
	if err := a.writer().Apply(ctx, client.ApplyConfigurationFromUnstructured(patch), client.FieldOwner(a.conversionManager()), client.ForceOwnership); err != nil {
		return fmt.Errorf("removing the conversion webhook of CRD %s: %w", name, err)
	}
	return nil
}

// webhookHealth returns "" when a webhook configuration is registered with
// a CA bundle on every webhook, otherwise why not.
func (a *Applier) webhookHealth(ctx context.Context, ref v1alpha1.ObjectReference) (string, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkOf(ref))
	err := a.Client.Get(ctx, client.ObjectKey{Name: ref.Name}, u)
	if apierrors.IsNotFound(err) {
		return describe(ref) + ": not registered yet: it is once its Deployment is available", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", describe(ref), err)
	}
	hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
	for _, h := range hooks {
		if ca, _, _ := unstructured.NestedString(asMap(h), "clientConfig", "caBundle"); ca == "" {
			name, _, _ := unstructured.NestedString(asMap(h), "name")
			return fmt.Sprintf("%s: webhook %s has no CA bundle yet: it gets one once its Deployment is available", describe(ref), name), nil
		}
	}
	return "", nil
}

// conversionHealth returns "" unless a CRD that Ferry gives a conversion
// webhook (AnnotationCAFrom) has none with a CA bundle yet.
func conversionHealth(crd *unstructured.Unstructured) string {
	if crd.GetAnnotations()[AnnotationCAFrom] == "" {
		return ""
	}
	strategy, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy")
	ca, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle")
	if strategy != "Webhook" || ca == "" {
		return fmt.Sprintf("CRD %s: conversion webhook not registered yet: it is once its Deployment is available", crd.GetName())
	}
	return ""
}

// checkRestoredWebhook checks a webhook configuration read back from a
// stored revision as Render would have made it: every webhook calls a
// Service of the install namespace (never a URL), intercepts none of the
// groups and resources a webhook may not, and the annotations that tell the
// Applier where its CA and Deployment are name the install namespace.
func checkRestoredWebhook(u *unstructured.Unstructured, namespace string) error {
	for _, a := range []string{AnnotationCAFrom, AnnotationWebhookDeployment} {
		ns, name, ok := strings.Cut(u.GetAnnotations()[a], "/")
		if !ok || ns != namespace || name == "" {
			return fmt.Errorf("annotation %s is %q, not an object of namespace %s", a, u.GetAnnotations()[a], namespace)
		}
	}
	hooks, _, err := unstructured.NestedSlice(u.Object, "webhooks")
	if err != nil {
		return err
	}
	for i, h := range hooks {
		var w struct {
			ClientConfig struct {
				URL     *string `json:"url"`
				Service *struct {
					Namespace string `json:"namespace"`
				} `json:"service"`
			} `json:"clientConfig"`
			Rules []struct {
				APIGroups []string `json:"apiGroups"`
				Resources []string `json:"resources"`
			} `json:"rules"`
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(asMap(h), &w); err != nil {
			return fmt.Errorf("webhooks[%d]: %w", i, err)
		}
		if w.ClientConfig.URL != nil || w.ClientConfig.Service == nil || w.ClientConfig.Service.Namespace != namespace {
			return fmt.Errorf("webhooks[%d]: clientConfig does not name a Service of namespace %s", i, namespace)
		}
		for j, r := range w.Rules {
			for _, g := range r.APIGroups {
				for _, f := range forbiddenWebhookGroups {
					if g == f {
						return fmt.Errorf("webhooks[%d].rules[%d]: intercepts group %q", i, j, g)
					}
				}
			}
			for _, res := range r.Resources {
				if base, _, _ := strings.Cut(res, "/"); base == "validatingwebhookconfigurations" || base == "mutatingwebhookconfigurations" {
					return fmt.Errorf("webhooks[%d].rules[%d]: intercepts %q", i, j, res)
				}
			}
		}
	}
	return nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// LiveCertificates returns objs as Apply would write them, for a dry run
// that compares them with the cluster, reading the live certificate
// Secrets with r and writing and generating nothing: a certificate Secret
// Apply would keep gets its live certificate, and the Deployments and
// webhooks that use it its CA hash and CA bundle. Regenerate lists the
// certificate Secrets Apply would create or replace instead (missing,
// invalid or due for rotation at now); they, and the objects that use
// them, are returned as rendered. objs are not modified.
func LiveCertificates(ctx context.Context, r client.Reader, objs []*unstructured.Unstructured, now time.Time) (out []*unstructured.Unstructured, regenerate []v1alpha1.ObjectReference, err error) {
	a := &Applier{Reader: r, Clock: func() time.Time { return now }}
	g := &generated{certs: map[string]*servingCert{}}
	out = make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o
		ref := Ref(o)
		if ref.Group != "" || ref.Kind != "Secret" || o.GetAnnotations()[AnnotationServingCertFor] == "" {
			continue
		}
		live := &corev1.Secret{}
		err := r.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, live)
		switch {
		case apierrors.IsNotFound(err):
			regenerate = append(regenerate, ref)
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("reading %s: %w", describe(ref), err)
		}
		if _, err := reuseServingCert(live.Data, o.GetAnnotations()[AnnotationServingCertFor], ref.Namespace, now); err != nil {
			regenerate = append(regenerate, ref)
			continue
		}
		if out[i], err = a.fill(ctx, o, g); err != nil {
			return nil, nil, err
		}
	}
	for i, o := range out {
		ref := Ref(o)
		switch {
		case ref.Group == kinds.GroupApps && ref.Kind == "Deployment":
			if out[i], err = a.fill(ctx, o, g); err != nil {
				return nil, nil, err
			}
		case isWebhookStep(o):
			cert := g.certs[o.GetAnnotations()[AnnotationCAFrom]]
			if cert == nil {
				continue
			}
			if out[i], err = withCABundle(o, base64.StdEncoding.EncodeToString(cert.caBundle)); err != nil {
				return nil, nil, err
			}
		}
	}
	return out, regenerate, nil
}

// withCABundle returns a copy of a webhook configuration, or of a CRD with
// a conversion webhook, with caBundle set.
func withCABundle(o *unstructured.Unstructured, caBundle string) (*unstructured.Unstructured, error) {
	out := o.DeepCopy()
	if isCRD(Ref(o)) {
		if err := unstructured.SetNestedField(out.Object, caBundle, "spec", "conversion", "webhook", "clientConfig", "caBundle"); err != nil {
			return nil, fmt.Errorf("CRD %s: %w", o.GetName(), err)
		}
		return out, nil
	}
	hooks, _, _ := unstructured.NestedSlice(out.Object, "webhooks")
	for i, h := range hooks {
		hm, ok := h.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: webhooks[%d] is not an object", describe(Ref(o)), i)
		}
		if err := unstructured.SetNestedField(hm, caBundle, "clientConfig", "caBundle"); err != nil {
			return nil, fmt.Errorf("%s: webhooks[%d]: %w", describe(Ref(o)), i, err)
		}
	}
	if err := unstructured.SetNestedSlice(out.Object, hooks, "webhooks"); err != nil {
		return nil, err
	}
	return out, nil
}
