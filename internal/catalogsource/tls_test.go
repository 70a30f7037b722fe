package catalogsource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/testpki"
)

// createNamespace creates a namespace with a fresh name.
func createNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tls-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func secret(ns, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func caFromConfigMap(name, key string) *v1alpha1.CatalogSourceTLS {
	return &v1alpha1.CatalogSourceTLS{CABundle: &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeyReference{Name: name, Key: key}}}
}

// TestSecurityBuild: the TLS settings read from real Secrets and
// ConfigMaps, and the precise error for each way they can be wrong.
func TestSecurityBuild(t *testing.T) {
	ns := createNamespace(t)
	ca := testpki.NewCA(t, "ferry test CA")
	clientCert := ca.Issue(t, "installer")
	other := ca.Issue(t, "other")
	expired := ca.Issue(t, "expired", testpki.WithValidity(time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)))
	for _, obj := range []client.Object{
		configMap(ns, "ca", map[string]string{"ca.crt": "# the test CA\n" + string(ca.CertPEM)}),
		configMap(ns, "ca-other-key", map[string]string{"bundle.pem": string(ca.CertPEM)}),
		configMap(ns, "not-pem", map[string]string{"ca.crt": "this is not PEM"}),
		configMap(ns, "bad-der", map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
		configMap(ns, "a-key", map[string]string{"ca.crt": string(ca.KeyPEM)}),
		secret(ns, "ca-secret", map[string][]byte{"ca.pem": ca.CertPEM}),
		secret(ns, "client", map[string][]byte{"tls.crt": clientCert.CertPEM, "tls.key": clientCert.KeyPEM}),
		secret(ns, "client-no-key", map[string][]byte{"tls.crt": clientCert.CertPEM}),
		secret(ns, "client-wrong-key", map[string][]byte{"tls.crt": clientCert.CertPEM, "tls.key": other.KeyPEM}),
		secret(ns, "client-expired", map[string][]byte{"tls.crt": expired.CertPEM, "tls.key": expired.KeyPEM}),
	} {
		create(t, obj)
	}
	b := &securityBuilder{reader: env.Client, namespace: ns}
	withClient := func(name string) *v1alpha1.CatalogSourceTLS {
		s := caFromConfigMap("ca", "")
		s.ClientCertificate = &v1alpha1.ClientCertificateSource{SecretRef: v1alpha1.SecretReference{Name: name}}
		return s
	}
	for _, tc := range []struct {
		name string
		spec *v1alpha1.CatalogSourceTLS
		// trust is a part of Security.Trust; err a part of the error.
		trust, err string
		check      func(*testing.T, *Security)
	}{
		{name: "no settings: TLS with the system roots", trust: "the system roots",
			check: func(t *testing.T, s *Security) {
				if s.Plaintext || s.TLS == nil || s.TLS.RootCAs != nil {
					t.Errorf("security %+v", s)
				}
			}},
		{name: "plaintext when asked", spec: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true}, trust: "plaintext",
			check: func(t *testing.T, s *Security) {
				if !s.Plaintext || s.TLS != nil {
					t.Errorf("security %+v", s)
				}
			}},
		{name: "CA from a ConfigMap, default key", spec: caFromConfigMap("ca", ""),
			trust: fmt.Sprintf(`ConfigMap %s/ca key "ca.crt"`, ns), check: trusts(ca)},
		{name: "CA from a ConfigMap, named key", spec: caFromConfigMap("ca-other-key", "bundle.pem"), check: trusts(ca)},
		{name: "CA from a Secret", spec: &v1alpha1.CatalogSourceTLS{ServerName: "catalogd.example", CABundle: &v1alpha1.CABundleSource{
			SecretRef: &v1alpha1.KeyReference{Name: "ca-secret", Key: "ca.pem"}}},
			trust: fmt.Sprintf(`Secret %s/ca-secret key "ca.pem"`, ns),
			check: func(t *testing.T, s *Security) {
				trusts(ca)(t, s)
				if s.TLS.ServerName != "catalogd.example" {
					t.Errorf("server name %q", s.TLS.ServerName)
				}
			}},
		{name: "client certificate", spec: withClient("client"),
			check: func(t *testing.T, s *Security) {
				if len(s.TLS.Certificates) != 1 || s.TLS.Certificates[0].Leaf.Subject.CommonName != "installer" {
					t.Errorf("client certificate %+v", s.TLS.Certificates)
				}
			}},
		{name: "missing ConfigMap", spec: caFromConfigMap("nope", ""),
			err: fmt.Sprintf("spec.tls.caBundle.configMapRef: ConfigMap %s/nope: not found", ns)},
		{name: "missing Secret", spec: &v1alpha1.CatalogSourceTLS{CABundle: &v1alpha1.CABundleSource{SecretRef: &v1alpha1.KeyReference{Name: "nope", Key: "ca.crt"}}},
			err: fmt.Sprintf("spec.tls.caBundle.secretRef: Secret %s/nope: not found", ns)},
		{name: "missing key", spec: caFromConfigMap("ca-other-key", "ca.crt"),
			err: fmt.Sprintf(`spec.tls.caBundle.configMapRef: ConfigMap %s/ca-other-key key "ca.crt": no such key (it has: bundle.pem)`, ns)},
		{name: "no PEM", spec: caFromConfigMap("not-pem", ""),
			err: fmt.Sprintf(`ConfigMap %s/not-pem key "ca.crt": holds no PEM certificate`, ns)},
		{name: "bad certificate", spec: caFromConfigMap("bad-der", ""),
			err: fmt.Sprintf(`ConfigMap %s/bad-der key "ca.crt": PEM block 1: x509: malformed certificate`, ns)},
		{name: "a key instead of a certificate", spec: caFromConfigMap("a-key", ""),
			err: `PEM block 1 is "EC PRIVATE KEY", not a CERTIFICATE`},
		{name: "client key missing", spec: withClient("client-no-key"),
			err: fmt.Sprintf(`spec.tls.clientCertificate.secretRef: Secret %s/client-no-key key "tls.key": no such key (it has: tls.crt)`, ns)},
		{name: "client key of another certificate", spec: withClient("client-wrong-key"),
			err: fmt.Sprintf(`spec.tls.clientCertificate.secretRef: Secret %s/client-wrong-key key "tls.crt, tls.key": tls: private key does not match public key`, ns)},
		{name: "client certificate expired", spec: withClient("client-expired"),
			err: fmt.Sprintf(`spec.tls.clientCertificate.secretRef: Secret %s/client-expired key "tls.crt": certificate "CN=expired" expired at`, ns)},
		{name: "plaintext with TLS settings", spec: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true, ServerName: "x"},
			err: "spec.tls.insecurePlaintext: excludes caBundle, serverName and clientCertificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec, err := b.build(context.Background(), tc.spec)
			if tc.err != "" {
				var cerr *TLSConfigError
				if !errors.As(err, &cerr) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v (%T), want a TLSConfigError containing %q", err, err, tc.err)
				}
				if got := disconnectedReason(err); got != v1alpha1.ReasonTLSConfigInvalid {
					t.Errorf("reason %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sec.Trust, tc.trust) {
				t.Errorf("trust %q, want it to contain %q", sec.Trust, tc.trust)
			}
			if tc.check != nil {
				tc.check(t, sec)
			}
		})
	}

	// The fingerprint follows the content of what the settings name.
	before, err := b.build(context.Background(), caFromConfigMap("ca", ""))
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.build(context.Background(), caFromConfigMap("ca", ""))
	if err != nil || again.Fingerprint != before.Fingerprint {
		t.Fatalf("same content, fingerprints %s and %s (%v)", before.Fingerprint, again.Fingerprint, err)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ca"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["ca.crt"] = string(testpki.NewCA(t, "rotated CA").CertPEM)
	if err := env.Client.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	after, err := b.build(context.Background(), caFromConfigMap("ca", ""))
	if err != nil || after.Fingerprint == before.Fingerprint {
		t.Errorf("rotated CA, fingerprint %s unchanged (%v)", after.Fingerprint, err)
	}
}

// trusts checks that the Security verifies certificates against ca only.
func trusts(ca *testpki.Cert) func(*testing.T, *Security) {
	return func(t *testing.T, s *Security) {
		t.Helper()
		if s.Plaintext || s.TLS == nil || s.TLS.RootCAs == nil {
			t.Fatalf("security %+v", s)
		}
		want := x509.NewCertPool()
		want.AddCert(ca.Cert)
		if !s.TLS.RootCAs.Equal(want) {
			t.Error("root CAs are not the test CA")
		}
	}
}

// serverTLS serves catalogd over TLS with cert; clientCAs, when set,
// require client certificates signed by it.
func serverTLS(cert *testpki.Cert, clientCAs *testpki.Cert) catalogd.ServerOption {
	pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
	if err != nil {
		panic(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(clientCAs.Cert)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return catalogd.WithGRPCOptions(grpc.Creds(credentials.NewTLS(cfg)))
}

// TestHandshake: a client with each kind of settings against real TLS (or
// plaintext) catalogd servers: it connects, or fails with an error that says
// what the handshake found.
func TestHandshake(t *testing.T) {
	c := demoCatalog(t, 1)
	ca := testpki.NewCA(t, "ferry test CA")
	otherCA := testpki.NewCA(t, "someone else's CA")
	good := startCatalogd(t, c, serverTLS(ca.Issue(t, "catalogd", testpki.WithHosts("127.0.0.1", "catalogd.example")), nil))
	expired := startCatalogd(t, c, serverTLS(ca.Issue(t, "catalogd-expired",
		testpki.WithValidity(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))), nil))
	mutual := startCatalogd(t, c, serverTLS(ca.Issue(t, "catalogd-mtls"), ca))
	plaintext := startCatalogd(t, c)
	trust := func(ca *testpki.Cert, serverName string, client *testpki.Cert) *Security {
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: serverName}
		if client != nil {
			pair, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &Security{TLS: cfg, Trust: "the CA " + ca.Cert.Subject.CommonName, Fingerprint: "test"}
	}
	for _, tc := range []struct {
		name string
		addr string
		sec  *Security
		// err is a part of the error; "" means the call succeeds.
		err string
		// handshake says the error is a TLSHandshakeError.
		handshake bool
	}{
		{name: "trusted CA", addr: good.addr, sec: trust(ca, "", nil)},
		{name: "trusted CA, server name", addr: good.addr, sec: trust(ca, "catalogd.example", nil)},
		{name: "untrusted CA", addr: good.addr, sec: trust(otherCA, "", nil), handshake: true,
			err: "(verifying against the CA someone else's CA): tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{name: "system roots do not know the test CA", addr: good.addr, sec: SystemRootsSecurity(), handshake: true,
			err: "(verifying against the system roots): tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{name: "server name mismatch", addr: good.addr, sec: trust(ca, "other.example", nil), handshake: true,
			err: "x509: certificate is valid for catalogd.example, not other.example"},
		{name: "expired server certificate", addr: expired.addr, sec: trust(ca, "", nil), handshake: true,
			err: "x509: certificate has expired or is not yet valid"},
		{name: "TLS to a plaintext server", addr: plaintext.addr, sec: trust(ca, "", nil), handshake: true,
			err: "TLS handshake with catalog at " + plaintext.addr + " failed"},
		{name: "mutual TLS", addr: mutual.addr, sec: trust(ca, "", ca.Issue(t, "installer"))},
		// With TLS 1.3 the server refuses after the client's handshake is
		// done: the call fails, as "certificate required" or a broken pipe.
		{name: "mutual TLS without a client certificate", addr: mutual.addr, sec: trust(ca, "", nil), err: "code = Unavailable"},
		{name: "plaintext", addr: plaintext.addr, sec: PlaintextSecurity()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := Dial(tc.addr, WithSecurity(tc.sec))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, _, err := cl.Snapshot(ctx, "")
			err = cl.explain(err)
			if tc.err == "" {
				if err != nil || got.Digest != c.Digest {
					t.Fatalf("snapshot %v, error %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			var herr *TLSHandshakeError
			if errors.As(err, &herr) != tc.handshake {
				t.Errorf("error %T %v: handshake error %v, want %v", err, err, !tc.handshake, tc.handshake)
			}
			if tc.handshake && disconnectedReason(err) != v1alpha1.ReasonTLSHandshakeFailed {
				t.Errorf("reason %s", disconnectedReason(err))
			}
		})
	}
}

// TestHandshakeErrorNotStale: after a failed handshake, a server that is
// gone is reported as unreachable, not as the old handshake failure.
func TestHandshakeErrorNotStale(t *testing.T) {
	ca := testpki.NewCA(t, "ferry test CA")
	srv := startCatalogd(t, demoCatalog(t, 1), serverTLS(ca.Issue(t, "catalogd"), nil))
	cl, err := Dial(srv.addr, WithSecurity(SystemRootsSecurity()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err = cl.Snapshot(ctx, "")
	var herr *TLSHandshakeError
	if err = cl.explain(err); !errors.As(err, &herr) {
		t.Fatalf("untrusted server: %v, want a TLSHandshakeError", err)
	}
	srv.stop()
	// gRPC keeps failing calls with the last connection error until its
	// next attempt ends; then it reports the refused connection, and so
	// must explain.
	if perr := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		cl.resetBackoff()
		_, _, err = cl.Snapshot(ctx, "")
		if err == nil {
			return false, errors.New("the call succeeded")
		}
		return !strings.Contains(err.Error(), "handshake"), nil
	}); perr != nil {
		t.Fatalf("server gone: %v (last error %v)", perr, err)
	}
	if err = cl.explain(err); errors.As(err, &herr) || disconnectedReason(err) != v1alpha1.ReasonUnreachable {
		t.Errorf("server gone: %v (%T), want an unreachable error", err, err)
	}
}

// connectedIs checks the Connected condition of a CatalogSource: its
// status, reason and a part of its message, for the current generation.
func connectedIs(t *testing.T, name string, status metav1.ConditionStatus, reason, message string) string {
	cs := getCatalogSource(t, name)
	cond := meta.FindStatusCondition(cs.Status.Conditions, v1alpha1.TypeConnected)
	switch {
	case cond == nil:
		return "no Connected condition"
	case cond.ObservedGeneration != cs.Generation:
		return fmt.Sprintf("condition of generation %d, object at %d", cond.ObservedGeneration, cs.Generation)
	case cond.Status != status || cond.Reason != reason || !strings.Contains(cond.Message, message):
		return fmt.Sprintf("Connected %s %s %q, want %s %s and a message containing %q", cond.Status, cond.Reason, cond.Message, status, reason, message)
	}
	return ""
}

// TestTLSCatalogSource: a CatalogSource that trusts a CA from a ConfigMap
// of the installer's namespace. A missing ConfigMap, a rotated CA that does
// not match the server, and the fix, each show in the Connected condition;
// the content stays while the connection is down.
func TestTLSCatalogSource(t *testing.T) {
	ns := createNamespace(t)
	r, _ := startControllerIn(t, ns)
	ca := testpki.NewCA(t, "ferry test CA")
	v1 := demoCatalog(t, 2)
	srv := startCatalogd(t, v1, serverTLS(ca.Issue(t, "catalogd", testpki.WithHosts("catalogd.example")), nil))
	const name = "tls"
	spec := caFromConfigMap("catalog-ca", "ca.crt")
	spec.ServerName = "catalogd.example"
	createCatalogSourceTLS(t, name, srv.addr, spec)

	eventually(t, "ConfigMap missing", func() string {
		return connectedIs(t, name, metav1.ConditionFalse, v1alpha1.ReasonTLSConfigInvalid,
			fmt.Sprintf("spec.tls.caBundle.configMapRef: ConfigMap %s/catalog-ca: not found", ns))
	})

	cm := configMap(ns, "catalog-ca", map[string]string{"ca.crt": string(ca.CertPEM)})
	create(t, cm)
	eventually(t, "connected once the ConfigMap exists", func() string { return statusIs(t, name, v1, metav1.ConditionTrue) })
	eventually(t, "stored", func() string { return storeHas(r.Store, name, v1, true) })

	// A CA that did not sign the server's certificate.
	cm.Data["ca.crt"] = string(testpki.NewCA(t, "rotated CA").CertPEM)
	if err := env.Client.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "handshake fails with the rotated CA", func() string {
		return connectedIs(t, name, metav1.ConditionFalse, v1alpha1.ReasonTLSHandshakeFailed,
			fmt.Sprintf(`verifying against the CA bundle in ConfigMap %s/catalog-ca key "ca.crt"): tls: failed to verify certificate: x509: certificate signed by unknown authority`, ns))
	})
	eventually(t, "content kept", func() string { return storeHas(r.Store, name, v1, false) })

	// The right CA again, with the server certificate's CA appended.
	cm.Data["ca.crt"] += string(ca.CertPEM)
	if err := env.Client.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "connected after the fix", func() string { return statusIs(t, name, v1, metav1.ConditionTrue) })

	// A key that is not in the ConfigMap.
	cs := getCatalogSource(t, name)
	cs.Spec.TLS.CABundle.ConfigMapRef.Key = "bundle.pem"
	if err := env.Client.Update(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "missing key", func() string {
		return connectedIs(t, name, metav1.ConditionFalse, v1alpha1.ReasonTLSConfigInvalid,
			fmt.Sprintf(`ConfigMap %s/catalog-ca key "bundle.pem": no such key (it has: ca.crt)`, ns))
	})
	if n := r.followerCount(); n != 0 {
		t.Errorf("%d followers run with unusable TLS settings", n)
	}
}

// TestMutualTLSCatalogSource: the CA from a Secret and a client
// certificate from a kubernetes.io/tls Secret connect to a catalogd that
// requires client certificates; a client certificate the server does not
// trust, put into the Secret, disconnects it.
func TestMutualTLSCatalogSource(t *testing.T) {
	ns := createNamespace(t)
	r, _ := startControllerIn(t, ns)
	ca := testpki.NewCA(t, "ferry test CA")
	v1 := demoCatalog(t, 1)
	srv := startCatalogd(t, v1, serverTLS(ca.Issue(t, "catalogd"), ca))
	installer := ca.Issue(t, "installer")
	create(t, secret(ns, "catalogd-tls", map[string][]byte{"ca.crt": ca.CertPEM}))
	clientSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "installer-client"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: installer.CertPEM, corev1.TLSPrivateKeyKey: installer.KeyPEM},
	}
	create(t, clientSecret)
	const name = "mtls"
	createCatalogSourceTLS(t, name, srv.addr, &v1alpha1.CatalogSourceTLS{
		CABundle:          &v1alpha1.CABundleSource{SecretRef: &v1alpha1.KeyReference{Name: "catalogd-tls", Key: "ca.crt"}},
		ClientCertificate: &v1alpha1.ClientCertificateSource{SecretRef: v1alpha1.SecretReference{Name: "installer-client"}},
	})
	eventually(t, "connected with the client certificate", func() string { return statusIs(t, name, v1, metav1.ConditionTrue) })
	eventually(t, "stored", func() string { return storeHas(r.Store, name, v1, true) })

	stranger := testpki.NewCA(t, "someone else's CA").Issue(t, "installer")
	clientSecret.Data = map[string][]byte{corev1.TLSCertKey: stranger.CertPEM, corev1.TLSPrivateKeyKey: stranger.KeyPEM}
	if err := env.Client.Update(context.Background(), clientSecret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refused with an untrusted client certificate", func() string {
		cond := meta.FindStatusCondition(getCatalogSource(t, name).Status.Conditions, v1alpha1.TypeConnected)
		if cond == nil || cond.Status != metav1.ConditionFalse {
			return fmt.Sprintf("Connected %+v", cond)
		}
		return ""
	})
}

// TestTLSReferencesOnlyInTheInstallerNamespace: a ConfigMap of the same
// name in another namespace is never read.
func TestTLSReferencesOnlyInTheInstallerNamespace(t *testing.T) {
	installerNS, otherNS := createNamespace(t), createNamespace(t)
	startControllerIn(t, installerNS)
	ca := testpki.NewCA(t, "ferry test CA")
	srv := startCatalogd(t, demoCatalog(t, 1), serverTLS(ca.Issue(t, "catalogd"), nil))
	create(t, configMap(otherNS, "elsewhere", map[string]string{"ca.crt": string(ca.CertPEM)}))
	createCatalogSourceTLS(t, "tls-elsewhere", srv.addr, caFromConfigMap("elsewhere", "ca.crt"))
	eventually(t, "not found in the installer's namespace", func() string {
		return connectedIs(t, "tls-elsewhere", metav1.ConditionFalse, v1alpha1.ReasonTLSConfigInvalid,
			fmt.Sprintf("ConfigMap %s/elsewhere: not found", installerNS))
	})
}

// TestTLSValidation: the API server refuses contradictory TLS settings.
func TestTLSValidation(t *testing.T) {
	ref := &v1alpha1.KeyReference{Name: "ca"}
	for _, tc := range []struct {
		name string
		tls  *v1alpha1.CatalogSourceTLS
		err  string
	}{
		{name: "plaintext and a CA", tls: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true, CABundle: &v1alpha1.CABundleSource{ConfigMapRef: ref}},
			err: "insecurePlaintext excludes caBundle, serverName and clientCertificate"},
		{name: "plaintext and a server name", tls: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true, ServerName: "catalogd.example"},
			err: "insecurePlaintext excludes caBundle, serverName and clientCertificate"},
		{name: "plaintext and a client certificate", tls: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true,
			ClientCertificate: &v1alpha1.ClientCertificateSource{SecretRef: v1alpha1.SecretReference{Name: "c"}}},
			err: "insecurePlaintext excludes caBundle, serverName and clientCertificate"},
		{name: "CA from both", tls: &v1alpha1.CatalogSourceTLS{CABundle: &v1alpha1.CABundleSource{ConfigMapRef: ref, SecretRef: ref}},
			err: "exactly one of configMapRef and secretRef must be set"},
		{name: "CA from neither", tls: &v1alpha1.CatalogSourceTLS{CABundle: &v1alpha1.CABundleSource{}},
			err: "exactly one of configMapRef and secretRef must be set"},
		{name: "bad server name", tls: &v1alpha1.CatalogSourceTLS{ServerName: "catalogd example"},
			err: "serverName must be a DNS name or an IP address"},
		{name: "bad key", tls: &v1alpha1.CatalogSourceTLS{CABundle: &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeyReference{Name: "ca", Key: "a/b"}}},
			err: "key must consist of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := &v1alpha1.CatalogSource{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "invalid-"},
				Spec:       v1alpha1.CatalogSourceSpec{Address: "catalogd.example:50051", TLS: tc.tls},
			}
			err := env.Client.Create(context.Background(), cs)
			if err == nil {
				_ = env.Client.Delete(context.Background(), cs)
				t.Fatal("created")
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
	// The key defaults to ca.crt.
	cs := createCatalogSourceTLS(t, "defaulted", "catalogd.example:50051", caFromConfigMap("ca", ""))
	if got := getCatalogSource(t, cs.Name).Spec.TLS.CABundle.ConfigMapRef.Key; got != v1alpha1.DefaultCABundleKey {
		t.Errorf("key defaulted to %q", got)
	}
}
