package install_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

// tollServer is the webhook server of the sample operator, run by the test
// on a local, non-loopback address with the certificate Ferry generated:
// validation refuses a negative amountCents, mutation sets approvedBy, and
// conversion maps v1 amountCents to v1alpha1 amount ("1.25") and back.
type tollServer struct {
	addr string
	port int32
	cert atomic.Pointer[tls.Certificate]
	mu   sync.Mutex
	hits map[string]int
}

// localIP is an IPv4 address of this machine that Endpoints accept (not
// loopback, not link-local).
func localIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address: the API server reaches a webhook through its Service's Endpoints, which refuse loopback addresses")
	return ""
}

func startTollServer(t *testing.T, ip string, certPEM, keyPEM []byte) *tollServer {
	t.Helper()
	s := &tollServer{hits: map[string]int{}}
	s.setCert(t, certPEM, keyPEM)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ip
	s.port = int32(ln.Addr().(*net.TCPAddr).Port)
	mux := http.NewServeMux()
	mux.HandleFunc("/validate-tollgate-ferry-dev-v1-toll", s.admit(func(obj map[string]any) *admissionv1.AdmissionResponse {
		// JSON numbers decode as float64.
		if n, _, _ := unstructured.NestedFieldNoCopy(obj, "spec", "amountCents"); toFloat(n) < 0 {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "tollgate says: amountCents must not be negative", Code: http.StatusForbidden}}
		}
		return &admissionv1.AdmissionResponse{Allowed: true}
	}))
	mux.HandleFunc("/mutate-tollgate-ferry-dev-v1-toll", s.admit(func(obj map[string]any) *admissionv1.AdmissionResponse {
		if v, _, _ := unstructured.NestedString(obj, "spec", "approvedBy"); v != "" {
			return &admissionv1.AdmissionResponse{Allowed: true}
		}
		pt := admissionv1.PatchTypeJSONPatch
		return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt, Patch: []byte(`[{"op":"add","path":"/spec/approvedBy","value":"tollgate"}]`)}
	}))
	mux.HandleFunc("/convert", s.convert)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
	}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *tollServer) setCert(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("the generated certificate and key: %v", err)
	}
	s.cert.Store(&c)
}

func (s *tollServer) hit(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits[path]++
}

func (s *tollServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *tollServer) admit(decide func(obj map[string]any) *admissionv1.AdmissionResponse) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.hit(r.URL.Path)
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad AdmissionReview", http.StatusBadRequest)
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(review.Request.Object.Raw, &obj); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp := decide(obj)
		resp.UID = review.Request.UID
		review.Request, review.Response = nil, resp
		_ = json.NewEncoder(w).Encode(review)
	}
}

func (s *tollServer) convert(w http.ResponseWriter, r *http.Request) {
	s.hit(r.URL.Path)
	var review apiextensionsv1.ConversionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad ConversionReview", http.StatusBadRequest)
		return
	}
	resp := &apiextensionsv1.ConversionResponse{UID: review.Request.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
	for _, raw := range review.Request.Objects {
		var obj map[string]any
		if err := json.Unmarshal(raw.Raw, &obj); err != nil {
			resp.Result = metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
			break
		}
		spec, _, _ := unstructured.NestedMap(obj, "spec")
		if spec == nil {
			spec = map[string]any{}
		}
		switch review.Request.DesiredAPIVersion {
		case "tollgate.ferry.dev/v1alpha1":
			if c, ok := spec["amountCents"].(float64); ok {
				spec["amount"] = fmt.Sprintf("%d.%02d", int64(c)/100, int64(c)%100)
				delete(spec, "amountCents")
			}
		case "tollgate.ferry.dev/v1":
			if a, ok := spec["amount"].(string); ok {
				whole, frac, _ := strings.Cut(a, ".")
				wi, _ := strconv.ParseInt(whole, 10, 64)
				fi, _ := strconv.ParseInt(frac, 10, 64)
				spec["amountCents"] = wi*100 + fi
				delete(spec, "amount")
			}
		}
		obj["spec"] = spec
		obj["apiVersion"] = review.Request.DesiredAPIVersion
		js, _ := json.Marshal(obj)
		resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: js})
	}
	review.Request, review.Response = nil, resp
	_ = json.NewEncoder(w).Encode(review)
}

// serveBehind makes the Service's endpoints the server's address (those
// that exist are kept), as the endpoints and EndpointSlice controllers
// would for a ready pod: older API
// servers resolve a Service through its Endpoints, newer ones through its
// EndpointSlices.
func serveBehind(ctx context.Context, t *testing.T, ns, service string, s *tollServer) {
	t.Helper()
	ep := &corev1.Endpoints{ //nolint:staticcheck // read by the endpoint resolver of older API servers
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: ns},
		Subsets: []corev1.EndpointSubset{{ //nolint:staticcheck // as above
			Addresses: []corev1.EndpointAddress{{IP: s.addr}},
			Ports:     []corev1.EndpointPort{{Name: "443", Port: s.port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	if err := env.Client.Create(ctx, ep); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating Endpoints: %v", err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-test", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{s.addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("443"), Port: ptr.To(s.port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := env.Client.Create(ctx, slice); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating EndpointSlice: %v", err)
	}
}

// makeAvailable sets the status of a Deployment as the deployment
// controller does once its pods are available.
func makeAvailable(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
		},
	}
	if err := env.Client.Status().Update(ctx, &d); err != nil {
		t.Fatalf("updating Deployment status: %v", err)
	}
}

func getSecret(ctx context.Context, t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("reading Secret %s/%s: %v", ns, name, err)
	}
	return s
}

func getU(ctx context.Context, t *testing.T, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("reading %s %s: %v", gvk.Kind, name, err)
	}
	return u
}

func caBundles(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	if u.GetKind() == "CustomResourceDefinition" {
		ca, _, _ := unstructured.NestedString(u.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle")
		return []string{ca}
	}
	hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
	var out []string
	for _, h := range hooks {
		ca, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
		out = append(out, ca)
	}
	return out
}

var (
	tollV1       = schema.GroupVersionKind{Group: "tollgate.ferry.dev", Version: "v1", Kind: "Toll"}
	tollV1alpha1 = schema.GroupVersionKind{Group: "tollgate.ferry.dev", Version: "v1alpha1", Kind: "Toll"}
	crdKind      = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
)

func webhookRefs(r *install.Rendered) (out []v1alpha1.ObjectReference) {
	for _, ref := range r.Inventory() {
		if strings.HasSuffix(ref.Kind, "WebhookConfiguration") || ref.Kind == "CustomResourceDefinition" {
			out = append(out, ref)
		}
	}
	return out
}

// TestWebhooksCalledWithTheGeneratedCA installs the sample operator with a
// validating, a mutating and a conversion webhook: nothing is registered
// before its Deployment is available; then the API server calls the
// webhook server (run here with the certificate Ferry generated, behind the
// Service's endpoints) for all three, trusting the injected CA. Applying
// again keeps the certificate; within the rotation threshold a new one
// replaces it without a request failing; uninstalling removes the
// configurations and the CRD's conversion webhook.
func TestWebhooksCalledWithTheGeneratedCA(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	r := render(t, webhookInput(t, ns, v1alpha1.InstallModeAllNamespaces))
	a := applier(t, ns)

	// 1. Deployment not available: no webhook registered, the CRD has no
	// conversion webhook, Health says what waits.
	res, err := a.Apply(ctx, r, nil)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got, want := refStrings(res.Deferred), refStrings(webhookRefs(r)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Deferred = %v, want %v", got, want)
	}
	for _, ref := range res.Deferred {
		if strings.HasSuffix(ref.Kind, "WebhookConfiguration") && exists(ctx, t, ref) {
			t.Errorf("%s registered before its Deployment is available", refString(ref))
		}
	}
	crd := getU(ctx, t, crdKind, "", tollgateCRD)
	if s, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy"); s != "None" {
		t.Errorf("CRD conversion strategy = %q before the Deployment is available, want None", s)
	}
	secret := getSecret(ctx, t, ns, tollgateCert)
	if secret.Type != corev1.SecretTypeTLS || len(secret.Data["tls.crt"]) == 0 || len(secret.Data["tls.key"]) == 0 || len(secret.Data["ca.crt"]) == 0 {
		t.Fatalf("certificate Secret = type %s, keys %d", secret.Type, len(secret.Data))
	}
	if res.CertificatesRotateAt.Before(time.Now().Add(install.CertificateValidity - install.CertificateRotationThreshold - time.Hour)) {
		t.Errorf("CertificatesRotateAt = %s", res.CertificatesRotateAt)
	}
	var dep appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: tollgateDep}, &dep); err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Template.Annotations[install.AnnotationCAHash] == "" {
		t.Errorf("pod template annotations = %v, want the CA hash", dep.Spec.Template.Annotations)
	}
	h, err := a.Health(ctx, res.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	if h.Healthy || !strings.Contains(h.Message, "not registered yet: it is once its Deployment is available") {
		t.Errorf("Health = %+v, want the webhooks pending", h)
	}

	// 2. Applying again keeps the certificate: nothing is written.
	if _, err := a.Apply(ctx, r, res.Inventory); err != nil {
		t.Fatal(err)
	}
	if again := getSecret(ctx, t, ns, tollgateCert); again.ResourceVersion != secret.ResourceVersion {
		t.Errorf("applying again rewrote the certificate Secret (resourceVersion %s → %s)", secret.ResourceVersion, again.ResourceVersion)
	}

	// 3. The Deployment is available and serves (this process, with the
	// Secret's certificate): everything is registered with the CA.
	srv := startTollServer(t, localIP(t), secret.Data["tls.crt"], secret.Data["tls.key"])
	serveBehind(ctx, t, ns, tollgateSvc, srv)
	makeAvailable(ctx, t, ns, tollgateDep)
	res, err = a.Apply(ctx, r, res.Inventory)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res.Deferred) > 0 {
		t.Fatalf("Deferred = %v with the Deployment available", refStrings(res.Deferred))
	}
	wantCA := string(secret.Data["ca.crt"])
	for _, ref := range webhookRefs(r) {
		for _, ca := range caBundles(t, getU(ctx, t, ref2gvk(ref), "", ref.Name)) {
			if ca != base64.StdEncoding.EncodeToString([]byte(wantCA)) {
				t.Errorf("%s: caBundle is not the Secret's ca.crt", refString(ref))
			}
		}
	}
	if h, err := a.Health(ctx, res.Inventory); err != nil || !h.Healthy {
		t.Errorf("Health = %+v, %v; want healthy", h, err)
	}

	// 4. The API server calls all three webhooks over TLS it verifies.
	checkTolls(ctx, t, ns, srv, "toll-1")

	// A dry run (kubectl ferry diff) sees the objects as Apply writes them:
	// the kept certificate and its CA bundle; at rotation time, the
	// Secret is one Apply replaces.
	asApplied, regenerate, err := install.LiveCertificates(ctx, env.Client, r.Objects, time.Now())
	if err != nil || len(regenerate) > 0 {
		t.Fatalf("LiveCertificates = %v, regenerate %v", err, refStrings(regenerate))
	}
	for _, o := range asApplied {
		switch o.GetKind() {
		case "Secret":
			if data, _, _ := unstructured.NestedStringMap(o.Object, "data"); data["tls.key"] != base64.StdEncoding.EncodeToString(secret.Data["tls.key"]) {
				t.Error("LiveCertificates: the Secret does not hold the live key")
			}
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			if ca := caBundles(t, o); ca[0] != base64.StdEncoding.EncodeToString([]byte(wantCA)) {
				t.Errorf("LiveCertificates: %s has caBundle %.20q", o.GetKind(), ca[0])
			}
		}
	}
	if _, regenerate, err := install.LiveCertificates(ctx, env.Client, r.Objects, res.CertificatesRotateAt); err != nil || len(regenerate) != 1 || regenerate[0].Name != tollgateCert {
		t.Errorf("LiveCertificates at rotation = %v, regenerate %v; want the Secret", err, refStrings(regenerate))
	}

	// 5. Replacement: a certificate Apply may not keep (here its tls.crt
	// is overwritten; within the rotation threshold alike, see
	// TestReuseServingCert) is replaced by a new CA and certificate. The
	// Deployment rolls (its CA hash changed), so the registered webhooks
	// only get the new bundle, which trusts the old certificate too: the
	// server still serving it keeps working, and so does the server
	// restarted with the new one.
	broken := secret.DeepCopy()
	broken.Data["tls.crt"] = []byte("not a certificate")
	if err := env.Client.Update(ctx, broken); err != nil {
		t.Fatal(err)
	}
	before := res.CertificatesRotateAt
	res, err = a.Apply(ctx, r, res.Inventory)
	if err != nil {
		t.Fatalf("Apply with a broken certificate: %v", err)
	}
	if len(res.Deferred) != 3 {
		t.Errorf("Deferred = %v while the Deployment rolls, want the three webhooks", refStrings(res.Deferred))
	}
	rotated := getSecret(ctx, t, ns, tollgateCert)
	if bytes.Equal(rotated.Data["tls.crt"], secret.Data["tls.crt"]) || !bytes.HasSuffix(rotated.Data["ca.crt"], secret.Data["ca.crt"]) || bytes.Equal(rotated.Data["ca.crt"], secret.Data["ca.crt"]) {
		t.Fatal("the certificate was not rotated to a bundle of the new and the old CA")
	}
	if !res.CertificatesRotateAt.After(before) {
		t.Errorf("CertificatesRotateAt after the replacement = %s, before %s", res.CertificatesRotateAt, before)
	}
	for _, ref := range webhookRefs(r) {
		for _, ca := range caBundles(t, getU(ctx, t, ref2gvk(ref), "", ref.Name)) {
			if ca != base64.StdEncoding.EncodeToString(rotated.Data["ca.crt"]) {
				t.Errorf("%s: caBundle is not the rotated bundle", refString(ref))
			}
		}
	}
	checkTolls(ctx, t, ns, srv, "toll-2")
	srv.setCert(t, rotated.Data["tls.crt"], rotated.Data["tls.key"])
	checkTolls(ctx, t, ns, srv, "toll-3")

	// 6. A version without webhooks prunes the configurations, the
	// Service and the certificate, and the CRD loses its conversion
	// webhook; going back registers them again, with a new certificate,
	// once the Deployment is available again.
	plain := editWebhooks(t, webhookInput(t, ns, v1alpha1.InstallModeAllNamespaces), func([]any) []any { return nil })
	res2, err := a.Apply(ctx, render(t, plain), res.Inventory)
	if err != nil {
		t.Fatalf("Apply without webhooks: %v", err)
	}
	var pruned []string
	for _, ref := range res2.Pruned {
		pruned = append(pruned, refString(ref))
	}
	wantPruned := []string{"Secret " + ns + "/" + tollgateCert, "Service " + ns + "/" + tollgateSvc, "MutatingWebhookConfiguration " + webhookRefs(r)[1].Name, "ValidatingWebhookConfiguration " + webhookRefs(r)[2].Name}
	if strings.Join(pruned, ",") != strings.Join(wantPruned, ",") {
		t.Errorf("Pruned = %v, want %v", pruned, wantPruned)
	}
	crd = getU(ctx, t, crdKind, "", tollgateCRD)
	if s, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy"); s != "None" {
		t.Errorf("CRD conversion strategy = %q without a conversion webhook, want None", s)
	}
	res, err = a.Apply(ctx, r, res2.Inventory)
	if err != nil || len(res.Deferred) != 3 {
		t.Fatalf("Apply with webhooks again = %v, deferred %v", err, refStrings(res.Deferred))
	}
	makeAvailable(ctx, t, ns, tollgateDep)
	if res, err = a.Apply(ctx, r, res.Inventory); err != nil || len(res.Deferred) != 0 {
		t.Fatalf("Apply with the Deployment available = %v, deferred %v", err, refStrings(res.Deferred))
	}
	again := getSecret(ctx, t, ns, tollgateCert)
	srv.setCert(t, again.Data["tls.crt"], again.Data["tls.key"])
	// Deleting the Service deleted its Endpoints.
	serveBehind(ctx, t, ns, tollgateSvc, srv)
	checkTolls(ctx, t, ns, srv, "toll-4")

	// 7. Uninstall: configurations first, conversion removed from the
	// kept CRD.
	if err := env.Client.DeleteAllOf(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "tollgate.ferry.dev/v1", "kind": "Toll"}}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	left, err := a.Uninstall(ctx, res.Inventory, v1alpha1.CRDDeletionKeep, install.ForOwner(r.Owner))
	if err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	for _, ref := range r.Inventory() {
		if ref.Kind == "CustomResourceDefinition" {
			continue
		}
		if exists(ctx, t, ref) {
			t.Errorf("%s left after Uninstall (remaining %d)", refString(ref), left.Remaining)
		}
	}
	crd = getU(ctx, t, crdKind, "", tollgateCRD)
	if s, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy"); s != "None" {
		t.Errorf("kept CRD's conversion strategy = %q after Uninstall, want None", s)
	}
}

// checkTolls proves that the API server called each webhook of srv: a
// negative amount is refused by the validating webhook, approvedBy is set
// by the mutating one, and reading the object at v1alpha1 is converted.
func checkTolls(ctx context.Context, t *testing.T, ns string, srv *tollServer, name string) {
	t.Helper()
	before := map[string]int{}
	for _, p := range []string{"/validate-tollgate-ferry-dev-v1-toll", "/mutate-tollgate-ferry-dev-v1-toll", "/convert"} {
		before[p] = srv.count(p)
	}
	toll := func(cents int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"amountCents": cents}}}
		u.SetGroupVersionKind(tollV1)
		u.SetNamespace(ns)
		u.SetName(name)
		return u
	}
	err := env.Client.Create(ctx, toll(-5))
	if err == nil || !strings.Contains(err.Error(), "tollgate says: amountCents must not be negative") {
		t.Fatalf("creating a negative Toll: %v, want the validating webhook's refusal", err)
	}
	if err := env.Client.Create(ctx, toll(125)); err != nil {
		t.Fatalf("creating a Toll: %v", err)
	}
	got := getU(ctx, t, tollV1, ns, name)
	if v, _, _ := unstructured.NestedString(got.Object, "spec", "approvedBy"); v != "tollgate" {
		t.Errorf("spec.approvedBy = %q, want the mutating webhook's tollgate", v)
	}
	old := getU(ctx, t, tollV1alpha1, ns, name)
	if v, _, _ := unstructured.NestedString(old.Object, "spec", "amount"); v != "1.25" {
		t.Errorf("v1alpha1 spec.amount = %q, want the conversion webhook's 1.25 (object %v)", v, old.Object)
	}
	for p, n := range before {
		if srv.count(p) <= n {
			t.Errorf("%s was not called", p)
		}
	}
	if err := env.Client.Delete(ctx, toll(0)); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

func toFloat(v any) float64 {
	f, _ := v.(float64)
	return f
}
