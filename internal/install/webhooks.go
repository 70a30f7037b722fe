package install

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/kinds"
)

// Webhook types of a CSV's spec.webhookdefinitions.
const (
	WebhookValidating = "ValidatingAdmissionWebhook"
	WebhookMutating   = "MutatingAdmissionWebhook"
	WebhookConversion = "ConversionWebhook"
)

// Annotations Render sets on the objects it generates for webhooks. The
// Applier acts on them; a shipped manifest may not carry them.
const (
	// AnnotationServingCertFor marks the Secret that holds the serving
	// certificate of a webhook Service, named by its value. Render puts
	// no key in it: the Applier generates the CA and the certificate when
	// it applies the Secret, or keeps the valid ones it finds (see
	// CertificateValidity and CertificateRotationThreshold). A Revision
	// therefore never stores a private key, and the certificate is not
	// part of the content digest.
	AnnotationServingCertFor = "operators.ferry.dev/serving-cert-for"
	// AnnotationCAFrom, on a webhook configuration or a CRD with a
	// conversion webhook, names the Secret ("namespace/name") whose CA the
	// Applier injects as caBundle.
	AnnotationCAFrom = "operators.ferry.dev/ca-from"
	// AnnotationWebhookDeployment, on the same objects, names the
	// Deployment ("namespace/name") that serves the webhook: the Applier
	// registers the webhook only once that Deployment is available.
	AnnotationWebhookDeployment = "operators.ferry.dev/webhook-deployment"
	// AnnotationCAHash is set on the pod template of a Deployment that
	// mounts a serving certificate: the SHA-256 of the CA bundle, so that
	// a rotated certificate rolls the pods, as OLM does with olmcahash.
	AnnotationCAHash = "operators.ferry.dev/ca-hash"
)

// Where a webhook server finds its certificate, as OLM mounts it.
const (
	// WebhookCertDir is where controller-runtime's webhook server reads
	// tls.crt and tls.key.
	WebhookCertDir = "/tmp/k8s-webhook-server/serving-certs"
	// APIServiceCertDir is where generic API servers read apiserver.crt
	// and apiserver.key.
	APIServiceCertDir = "/apiserver.local.config/certificates"

	webhookCertVolume    = "webhook-cert"
	apiServiceCertVolume = "apiservice-cert"
	// SecretKeyCA is the Secret key of the PEM CA bundle the API server is
	// given; tls.crt and tls.key hold the serving certificate and key.
	SecretKeyCA = "ca.crt"
)

// generatedAnnotations are the annotations only Render sets.
var generatedAnnotations = []string{AnnotationServingCertFor, AnnotationCAFrom, AnnotationWebhookDeployment}

// excludedNamespace is the namespace an AllNamespaces webhook never
// matches: a failing webhook there would stop the cluster's own workloads.
const excludedNamespace = "kube-system"

// namespaceNameLabel is the label the API server sets on every namespace to
// its name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// forbiddenWebhookGroups are the API groups a webhook may not intercept: the
// operator-lifecycle APIs (an operator could otherwise stop its own
// uninstall or another's), and admission registration itself (a webhook
// could then protect itself from removal). "*" would include both.
var forbiddenWebhookGroups = []string{"*", v1alpha1.GroupVersion.Group, "operators.coreos.com", kinds.GroupAdmission}

// webhookPlan is what the webhooks of a CSV add to a render.
type webhookPlan struct {
	// objects are the generated Services, Secrets and webhook
	// configurations.
	objects []*unstructured.Unstructured
	// certs maps a Deployment name to the Secret it must mount.
	certs map[string]string
}

// serviceName is the webhook Service of a deployment, as OLM names it.
func serviceName(deployment string) string {
	return strings.ReplaceAll(deployment, ".", "-") + "-service"
}

// webhookConfigName is the name of the configuration of one webhook: its
// generateName and a hash of the owning Subscription, so that the same
// operator installed by two Subscriptions gets two configurations, and Ferry
// finds its own again.
func webhookConfigName(generateName string, owner types.NamespacedName) string {
	sum := sha256.Sum256([]byte(owner.Namespace + "/" + owner.Name))
	h := hex.EncodeToString(sum[:])[:10]
	base := generateName
	if maxBase := validation.DNS1123SubdomainMaxLength - len(h) - 1; len(base) > maxBase {
		base = strings.TrimRight(base[:maxBase], "-.")
	}
	return base + "-" + h
}

// planWebhooks validates the CSV's webhookdefinitions as OLM does and
// renders what they need: per serving Deployment a Service and a Secret
// for the certificate, per admission webhook a webhook configuration, and
// per conversion webhook the spec.conversion of the CRDs it converts
// (changed in shipped). mode and watched are the install mode and the
// namespaces watched (none for AllNamespaces).
func planWebhooks(csvName string, spec *csvSpec, ns string, owner types.NamespacedName, mode v1alpha1.InstallMode, watched []string, shipped []*unstructured.Unstructured) (*webhookPlan, error) {
	plan := &webhookPlan{certs: map[string]string{}}
	for _, u := range shipped {
		for _, a := range generatedAnnotations {
			if _, ok := u.GetAnnotations()[a]; ok {
				return nil, fmt.Errorf("ClusterServiceVersion %s: shipped %s carries annotation %s, which only Ferry sets", csvName, describe(Ref(u)), a)
			}
		}
		if err := checkConversionURL(u); err != nil {
			return nil, fmt.Errorf("ClusterServiceVersion %s: shipped %s: %w", csvName, describe(Ref(u)), err)
		}
	}
	if len(spec.WebhookDefinitions) == 0 {
		return plan, nil
	}
	deployments := map[string]int{}
	for i, d := range spec.Install.Spec.Deployments {
		deployments[d.Name] = i
	}
	crds := map[string]*unstructured.Unstructured{}
	for _, u := range shipped {
		if u.GetKind() == kindCRD {
			crds[u.GetName()] = u
		}
	}
	owned := map[string]bool{}
	for _, o := range spec.CustomResourceDefinitions.Owned {
		owned[o.Name] = true
	}

	names := map[string]int{}
	converted := map[string]int{}
	ports := map[string][]corev1.ServicePort{}
	var serving []string
	for i := range spec.WebhookDefinitions {
		w := &spec.WebhookDefinitions[i]
		where := fmt.Sprintf("ClusterServiceVersion %s: spec.webhookdefinitions[%d]", csvName, i)
		if w.GenerateName != "" {
			where += fmt.Sprintf(" (%s)", w.GenerateName)
		}
		bad := func(field, format string, args ...any) error {
			return fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...))
		}
		if err := validateWebhook(w, bad); err != nil {
			return nil, err
		}
		if j, dup := names[w.GenerateName]; dup {
			return nil, bad("generateName", "%q is also the generateName of spec.webhookdefinitions[%d]; each webhook needs its own", w.GenerateName, j)
		}
		names[w.GenerateName] = i
		di, ok := deployments[w.DeploymentName]
		if !ok {
			return nil, bad("deploymentName", "%q is not a deployment of spec.install.spec.deployments", w.DeploymentName)
		}
		dep := spec.Install.Spec.Deployments[di]
		svc := serviceName(dep.Name)
		if errs := validation.IsDNS1035Label(svc); len(errs) > 0 {
			return nil, bad("deploymentName", "the webhook Service of deployment %q would be named %q, which is not a valid Service name: %s", dep.Name, svc, strings.Join(errs, "; "))
		}
		if dep.Spec.Selector == nil || len(dep.Spec.Selector.MatchLabels) == 0 {
			return nil, bad("deploymentName", "deployment %q has no spec.selector.matchLabels, which the webhook Service selects its pods by", dep.Name)
		}
		port, err := servicePort(w)
		if err != nil {
			return nil, bad("targetPort", "%v", err)
		}
		if j := slices.IndexFunc(ports[dep.Name], func(p corev1.ServicePort) bool { return p.Port == port.Port }); j >= 0 {
			if ports[dep.Name][j].TargetPort != port.TargetPort {
				return nil, bad("targetPort", "port %d of deployment %q is given target ports %s and %s", port.Port, dep.Name, ports[dep.Name][j].TargetPort.String(), port.TargetPort.String())
			}
		} else {
			ports[dep.Name] = append(ports[dep.Name], port)
		}
		if _, ok := plan.certs[dep.Name]; !ok {
			plan.certs[dep.Name] = svc + "-cert"
			serving = append(serving, dep.Name)
		}
		secretRef := ns + "/" + plan.certs[dep.Name]
		depRef := ns + "/" + dep.Name
		service := admissionregistrationv1.ServiceReference{Namespace: ns, Name: svc, Path: w.WebhookPath, Port: ptrTo(w.ContainerPort)}

		if w.Type == WebhookConversion {
			if mode != v1alpha1.InstallModeAllNamespaces {
				return nil, bad("type", "a conversion webhook changes CRDs for the whole cluster; it is installed in install mode AllNamespaces only, not %s", mode)
			}
			for j, name := range w.ConversionCRDs {
				field := fmt.Sprintf("conversionCRDs[%d]", j)
				crd, ok := crds[name]
				if !ok || !owned[name] {
					return nil, bad(field, "CRD %s is not an owned CRD of the bundle (spec.customresourcedefinitions.owned); only those may be converted", name)
				}
				if k, dup := converted[name]; dup {
					return nil, bad(field, "CRD %s is also converted by spec.webhookdefinitions[%d]", name, k)
				}
				converted[name] = i
				if p, _, _ := unstructured.NestedBool(crd.Object, "spec", "preserveUnknownFields"); p {
					return nil, bad(field, "CRD %s sets spec.preserveUnknownFields, which a conversion webhook does not allow", name)
				}
				path := "/"
				if w.WebhookPath != nil {
					path = *w.WebhookPath
				}
				conv := map[string]any{
					"strategy": "Webhook",
					"webhook": map[string]any{
						"clientConfig": map[string]any{"service": map[string]any{
							"namespace": ns, "name": svc, "path": path, "port": int64(w.ContainerPort),
						}},
						"conversionReviewVersions": toAnySlice(w.AdmissionReviewVersions),
					},
				}
				if err := unstructured.SetNestedMap(crd.Object, conv, "spec", "conversion"); err != nil {
					return nil, bad(field, "CRD %s: %v", name, err)
				}
				setAnnotations(crd, map[string]string{AnnotationCAFrom: secretRef, AnnotationWebhookDeployment: depRef})
			}
			continue
		}

		selector := namespaceSelector(mode, watched)
		var obj runtime.Object
		meta := metav1.ObjectMeta{
			Name:        webhookConfigName(w.GenerateName, owner),
			Annotations: map[string]string{AnnotationCAFrom: secretRef, AnnotationWebhookDeployment: depRef},
		}
		cc := admissionregistrationv1.WebhookClientConfig{Service: &service}
		if w.Type == WebhookValidating {
			obj = &admissionregistrationv1.ValidatingWebhookConfiguration{
				TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
				ObjectMeta: meta,
				Webhooks: []admissionregistrationv1.ValidatingWebhook{{
					Name: w.GenerateName, ClientConfig: cc, Rules: w.Rules, FailurePolicy: w.FailurePolicy,
					MatchPolicy: w.MatchPolicy, NamespaceSelector: selector, ObjectSelector: w.ObjectSelector,
					SideEffects: w.SideEffects, TimeoutSeconds: w.TimeoutSeconds, AdmissionReviewVersions: w.AdmissionReviewVersions,
				}},
			}
		} else {
			obj = &admissionregistrationv1.MutatingWebhookConfiguration{
				TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
				ObjectMeta: meta,
				Webhooks: []admissionregistrationv1.MutatingWebhook{{
					Name: w.GenerateName, ClientConfig: cc, Rules: w.Rules, FailurePolicy: w.FailurePolicy,
					MatchPolicy: w.MatchPolicy, NamespaceSelector: selector, ObjectSelector: w.ObjectSelector,
					SideEffects: w.SideEffects, TimeoutSeconds: w.TimeoutSeconds, AdmissionReviewVersions: w.AdmissionReviewVersions,
					ReinvocationPolicy: w.ReinvocationPolicy,
				}},
			}
		}
		m, err := toUnstructured(obj)
		if err != nil {
			return nil, err
		}
		plan.objects = append(plan.objects, m)
	}

	for _, name := range serving {
		dep := &spec.Install.Spec.Deployments[deployments[name]]
		svcName := serviceName(name)
		secret := plan.certs[name]
		svc := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: svcName, Namespace: ns},
			Spec:       corev1.ServiceSpec{Ports: ports[name], Selector: maps(dep.Spec.Selector.MatchLabels)},
		}
		sec := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: secret, Namespace: ns, Annotations: map[string]string{AnnotationServingCertFor: svcName}},
			Type:       corev1.SecretTypeTLS,
		}
		for _, o := range []runtime.Object{svc, sec} {
			u, err := toUnstructured(o)
			if err != nil {
				return nil, err
			}
			plan.objects = append(plan.objects, u)
		}
		mountCerts(&dep.Spec.Template.Spec, secret)
	}
	return plan, nil
}

// checkConversionURL refuses a CRD whose conversion webhook is called by
// URL: the API server would send every object it converts to an address
// outside the cluster's Services. Conversion webhooks are Services.
func checkConversionURL(u *unstructured.Unstructured) error {
	if !isCRD(Ref(u)) {
		return nil
	}
	if url, ok, _ := unstructured.NestedString(u.Object, "spec", "conversion", "webhook", "clientConfig", "url"); ok {
		return fmt.Errorf("spec.conversion.webhook.clientConfig.url is %q: a CRD's conversion webhook must be a Service, declared in the CSV's webhookdefinitions", url)
	}
	return nil
}

// validateWebhook checks the fields of one webhook description that do not
// depend on the rest of the CSV.
func validateWebhook(w *csvWebhook, bad func(field, format string, args ...any) error) error {
	if w.GenerateName == "" {
		return bad("generateName", "is empty")
	}
	// The API server wants webhook names fully qualified ("v.example.com").
	if errs := validation.IsDNS1123Subdomain(w.GenerateName); len(errs) > 0 || strings.Count(w.GenerateName, ".") < 2 {
		return bad("generateName", "%q is not a fully qualified name of at least three segments (e.g. vmemcached.example.com), as webhook names must be", w.GenerateName)
	}
	switch w.Type {
	case WebhookValidating, WebhookMutating, WebhookConversion:
	case "":
		return bad("type", "is empty; it is one of %s, %s or %s", WebhookValidating, WebhookMutating, WebhookConversion)
	default:
		return bad("type", "%q is not one of %s, %s or %s", w.Type, WebhookValidating, WebhookMutating, WebhookConversion)
	}
	if w.DeploymentName == "" {
		return bad("deploymentName", "is empty; it names the deployment that serves the webhook")
	}
	if w.ContainerPort == 0 {
		w.ContainerPort = 443
	}
	if w.ContainerPort < 1 || w.ContainerPort > 65535 {
		return bad("containerPort", "%d is not a port (1-65535)", w.ContainerPort)
	}
	if w.WebhookPath != nil && !strings.HasPrefix(*w.WebhookPath, "/") {
		return bad("webhookPath", "%q does not start with /", *w.WebhookPath)
	}
	if len(w.AdmissionReviewVersions) == 0 {
		return bad("admissionReviewVersions", "is empty; name the versions the webhook understands (v1)")
	}
	if w.TimeoutSeconds != nil && (*w.TimeoutSeconds < 1 || *w.TimeoutSeconds > 30) {
		return bad("timeoutSeconds", "%d is not between 1 and 30", *w.TimeoutSeconds)
	}
	if w.Type == WebhookConversion {
		if len(w.ConversionCRDs) == 0 {
			return bad("conversionCRDs", "is empty; a conversion webhook names the CRDs it converts")
		}
		return nil
	}
	if len(w.ConversionCRDs) > 0 {
		return bad("conversionCRDs", "is set on a %s; only a %s converts CRDs", w.Type, WebhookConversion)
	}
	if w.SideEffects == nil {
		return bad("sideEffects", "is missing; it is None or NoneOnDryRun")
	}
	if *w.SideEffects != admissionregistrationv1.SideEffectClassNone && *w.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun {
		return bad("sideEffects", "%q is not None or NoneOnDryRun", *w.SideEffects)
	}
	if w.ReinvocationPolicy != nil && w.Type != WebhookMutating {
		return bad("reinvocationPolicy", "is set on a %s; only a %s is reinvoked", w.Type, WebhookMutating)
	}
	if len(w.Rules) == 0 {
		return bad("rules", "is empty; the webhook would never be called")
	}
	for j, r := range w.Rules {
		for _, g := range r.APIGroups {
			if slices.Contains(forbiddenWebhookGroups, g) {
				return bad(fmt.Sprintf("rules[%d].apiGroups", j), "names %q; a webhook may not intercept %s", g, strings.Join(forbiddenWebhookGroups, ", "))
			}
		}
		for _, res := range r.Resources {
			base, _, _ := strings.Cut(res, "/")
			if base == "validatingwebhookconfigurations" || base == "mutatingwebhookconfigurations" {
				return bad(fmt.Sprintf("rules[%d].resources", j), "names %q; a webhook may not intercept webhook configurations", res)
			}
		}
	}
	return nil
}

// servicePort is the Service port of a webhook: named after the container
// port, to targetPort or the container port.
func servicePort(w *csvWebhook) (corev1.ServicePort, error) {
	target := intstr.FromInt32(w.ContainerPort)
	// 0 and "" mean unset, as the API server defaults a Service's port.
	if w.TargetPort != nil && *w.TargetPort != intstr.FromInt32(0) && *w.TargetPort != intstr.FromString("") {
		target = *w.TargetPort
		switch target.Type {
		case intstr.Int:
			if target.IntVal < 1 || target.IntVal > 65535 {
				return corev1.ServicePort{}, fmt.Errorf("%d is not a port (1-65535)", target.IntVal)
			}
		case intstr.String:
			if errs := validation.IsValidPortName(target.StrVal); len(errs) > 0 {
				return corev1.ServicePort{}, fmt.Errorf("%q is not a port name: %s", target.StrVal, strings.Join(errs, "; "))
			}
		}
	}
	return corev1.ServicePort{Name: strconv.Itoa(int(w.ContainerPort)), Port: w.ContainerPort, TargetPort: target, Protocol: corev1.ProtocolTCP}, nil
}

// namespaceSelector is the namespaceSelector of a webhook: the namespaces
// the operator watches, or for AllNamespaces every namespace but
// excludedNamespace.
func namespaceSelector(mode v1alpha1.InstallMode, watched []string) *metav1.LabelSelector {
	if mode == v1alpha1.InstallModeAllNamespaces || len(watched) == 0 {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{excludedNamespace},
		}}}
	}
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: slices.Clone(watched),
	}}}
}

// mountCerts mounts the certificate Secret into every container where OLM
// mounts it: tls.crt and tls.key in WebhookCertDir, and as apiserver.crt
// and apiserver.key in APIServiceCertDir. Volumes and mounts of the same
// name, and other mounts at those paths, are replaced.
func mountCerts(ps *corev1.PodSpec, secret string) {
	vols := []corev1.Volume{
		{Name: apiServiceCertVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret,
			Items:      []corev1.KeyToPath{{Key: corev1.TLSCertKey, Path: "apiserver.crt"}, {Key: corev1.TLSPrivateKeyKey, Path: "apiserver.key"}},
		}}},
		{Name: webhookCertVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret,
			Items:      []corev1.KeyToPath{{Key: corev1.TLSCertKey, Path: corev1.TLSCertKey}, {Key: corev1.TLSPrivateKeyKey, Path: corev1.TLSPrivateKeyKey}},
		}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: apiServiceCertVolume, MountPath: APIServiceCertDir},
		{Name: webhookCertVolume, MountPath: WebhookCertDir},
	}
	for _, v := range vols {
		ps.Volumes = slices.DeleteFunc(ps.Volumes, func(x corev1.Volume) bool { return x.Name == v.Name })
		ps.Volumes = append(ps.Volumes, v)
	}
	for i := range ps.Containers {
		c := &ps.Containers[i]
		for _, m := range mounts {
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(x corev1.VolumeMount) bool {
				return x.Name == m.Name || strings.TrimRight(x.MountPath, "/") == m.MountPath
			})
			c.VolumeMounts = append(c.VolumeMounts, m)
		}
	}
}

func setAnnotations(u *unstructured.Unstructured, add map[string]string) {
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range add {
		a[k] = v
	}
	u.SetAnnotations(a)
}

func toAnySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }
