package cli_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/testpki"
)

// TestCatalogTLS: the plugin connects to catalogd as the installer does:
// the CA bundle a CatalogSource names, read from the installer's namespace
// only, and the certificate checked against the name in the CatalogSource
// also when --catalog-address sends the connection elsewhere.
func TestCatalogTLS(t *testing.T) {
	ca := testpki.NewCA(t, "ferry test CA")
	cert := ca.Issue(t, "catalogd", testpki.WithHosts("catalogd.example"))
	pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	addr := sampleCatalogd(t, catalogd.WithGRPCOptions(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))))
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}

	installerNS := namespace(t, "ferry-system")
	elsewhere := namespace(t, "catalog-tls-elsewhere")
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: installerNS, Name: "catalogd-ca"}, Data: map[string]string{"ca.crt": string(ca.CertPEM)}})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: installerNS, Name: "other-ca"}, Data: map[string]string{"ca.crt": string(testpki.NewCA(t, "someone else's CA").CertPEM)}})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: elsewhere, Name: "elsewhere-ca"}, Data: map[string]string{"ca.crt": string(ca.CertPEM)}})
	source := func(name, address, serverName, configMap string) {
		create(t, &v1alpha1.CatalogSource{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.CatalogSourceSpec{Address: address, TLS: &v1alpha1.CatalogSourceTLS{
				ServerName: serverName,
				CABundle:   &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeyReference{Name: configMap, Key: "ca.crt"}},
			}},
		})
	}
	source("by-name", "catalogd.example:"+port, "", "catalogd-ca")
	source("by-server-name", addr, "catalogd.example", "catalogd-ca")
	source("by-address", addr, "", "catalogd-ca")
	source("untrusted", addr, "catalogd.example", "other-ca")
	source("elsewhere", addr, "catalogd.example", "elsewhere-ca")

	t.Run("connects", func(t *testing.T) {
		cases := []struct {
			name string
			args []string
		}{
			{name: "through --catalog-address, checked against spec.address", args: []string{"catalog", "show", "signal-store", "--catalog", "by-name", "--catalog-address", addr}},
			{name: "checked against spec.tls.serverName", args: []string{"catalog", "show", "signal-store", "--catalog", "by-server-name"}},
			{name: "CA read from --catalog-tls-namespace", args: []string{"catalog", "show", "signal-store", "--catalog", "elsewhere", "--catalog-tls-namespace", elsewhere}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if out := mustRun(t, tc.args...).out; !strings.Contains(out, "Package:          signal-store") {
					t.Errorf("stdout:\n%s", out)
				}
			})
		}
	})

	t.Run("refuses", func(t *testing.T) {
		cases := []struct {
			name      string
			args      []string
			fragments []string
		}{
			{name: "a name the certificate does not hold", args: []string{"catalog", "show", "signal-store", "--catalog", "by-address"},
				fragments: []string{`catalog "by-address" at ` + addr + ": GetPackage: TLS handshake with catalog at " + addr + ` failed (verifying against the CA bundle in ConfigMap ferry-system/catalogd-ca key "ca.crt")`, "127.0.0.1"}},
			{name: "a certificate of another CA", args: []string{"catalog", "show", "signal-store", "--catalog", "untrusted"},
				fragments: []string{`failed (verifying against the CA bundle in ConfigMap ferry-system/other-ca key "ca.crt")`, "unknown authority"}},
			{name: "a CA outside the installer's namespace", args: []string{"catalog", "show", "signal-store", "--catalog", "elsewhere"},
				fragments: []string{"CatalogSource elsewhere: spec.tls.caBundle.configMapRef: ConfigMap ferry-system/elsewhere-ca: not found"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { wantError(t, tc.args, tc.fragments...) })
		}
	})
}
