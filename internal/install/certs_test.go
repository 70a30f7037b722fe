package install

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

var certEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func mustCert(t *testing.T, service, ns string, now time.Time, previous []byte) *servingCert {
	t.Helper()
	c, err := newServingCert(service, ns, now, previous)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewServingCert(t *testing.T) {
	c := mustCert(t, "svc", "ns", certEpoch, nil)
	block, _ := pem.Decode(c.cert)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(leaf.DNSNames, ","); got != "svc.ns,svc.ns.svc,svc.ns.svc.cluster.local" {
		t.Errorf("DNS names = %s", got)
	}
	if leaf.NotAfter.Sub(certEpoch) != CertificateValidity {
		t.Errorf("valid until %s, want %s after %s", leaf.NotAfter, CertificateValidity, certEpoch)
	}
	if want := certEpoch.Add(CertificateValidity - CertificateRotationThreshold); !c.rotateAt.Equal(want) {
		t.Errorf("rotateAt = %s, want %s", c.rotateAt, want)
	}
	if !bytes.HasPrefix(c.key, []byte("-----BEGIN EC PRIVATE KEY-----")) {
		t.Errorf("key is not an EC PRIVATE KEY PEM")
	}
	cas, err := parseCerts(c.caBundle)
	if err != nil || len(cas) != 1 || !cas[0].IsCA {
		t.Fatalf("CA bundle: %v, %d certificates", err, len(cas))
	}
	if _, err := reuseServingCert(c.data(), "svc", "ns", certEpoch); err != nil {
		t.Errorf("a new certificate is not reusable: %v", err)
	}
}

// TestReuseServingCert: a valid certificate is kept (so applying again
// changes nothing), anything else is replaced, and within the rotation
// threshold it is rotated.
func TestReuseServingCert(t *testing.T) {
	c := mustCert(t, "svc", "ns", certEpoch, nil)
	other := mustCert(t, "svc", "ns", certEpoch, nil)
	with := func(k string, v []byte) map[string][]byte {
		d := c.data()
		d[k] = v
		return d
	}
	tests := []struct {
		name    string
		data    map[string][]byte
		service string
		now     time.Time
		want    string
	}{
		{name: "valid", data: c.data(), service: "svc", now: certEpoch.Add(24 * time.Hour)},
		{name: "valid just before the threshold", data: c.data(), service: "svc", now: c.rotateAt.Add(-time.Second)},
		{name: "within the threshold", data: c.data(), service: "svc", now: c.rotateAt, want: "within 24h0m0s"},
		{name: "expired", data: c.data(), service: "svc", now: certEpoch.Add(CertificateValidity + time.Hour), want: "not valid from the CA"},
		{name: "another Service", data: c.data(), service: "other", want: "the certificate is for [svc.ns svc.ns.svc svc.ns.svc.cluster.local]"},
		{name: "missing key", data: with(corev1.TLSPrivateKeyKey, nil), service: "svc", want: "tls.key is missing"},
		{name: "key of another certificate", data: with(corev1.TLSPrivateKeyKey, other.key), service: "svc", want: "tls.key is not the key of the certificate"},
		{name: "another CA", data: with(SecretKeyCA, other.caBundle), service: "svc", want: "not valid from the CA"},
		{name: "garbage CA", data: with(SecretKeyCA, []byte("hello")), service: "svc", want: "ca.crt: not PEM"},
		{name: "private key as CA", data: with(SecretKeyCA, c.key), service: "svc", want: "ca.crt: holds a EC PRIVATE KEY, not a CERTIFICATE"},
		{name: "three CAs", data: with(SecretKeyCA, bytes.Repeat(c.caBundle, 3)), service: "svc", want: "ca.crt: holds more than 2 certificates"},
		{name: "oversized", data: with(corev1.TLSCertKey, bytes.Repeat([]byte("x"), maxSecretValue+1)), service: "svc", want: "tls.crt is larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = certEpoch
			}
			got, err := reuseServingCert(tt.data, tt.service, "ns", now)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("reuseServingCert = %v, want it kept", err)
				}
				if !bytes.Equal(got.cert, c.cert) || !bytes.Equal(got.key, c.key) || !bytes.Equal(got.caBundle, c.caBundle) || !got.rotateAt.Equal(c.rotateAt) {
					t.Error("the kept certificate differs from the Secret's")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("reuseServingCert = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestRotatedBundleTrustsBoth: a rotated certificate's CA bundle holds the
// new CA first and the old one while it is valid, so that webhooks still
// configured with the old CA and servers already serving the new
// certificate both work; the next rotation drops the oldest.
func TestRotatedBundleTrustsBoth(t *testing.T) {
	first := mustCert(t, "svc", "ns", certEpoch, nil)
	at := first.rotateAt
	second := mustCert(t, "svc", "ns", at, first.caBundle)
	cas, err := parseCerts(second.caBundle)
	if err != nil || len(cas) != 2 {
		t.Fatalf("rotated bundle: %v, %d CAs, want 2", err, len(cas))
	}
	oldCA, _ := parseCerts(first.caBundle)
	if !cas[1].Equal(oldCA[0]) || cas[0].Equal(oldCA[0]) {
		t.Error("the rotated bundle is not [new CA, old CA]")
	}
	if _, err := reuseServingCert(second.data(), "svc", "ns", at); err != nil {
		t.Errorf("the rotated certificate is not reusable: %v", err)
	}
	third := mustCert(t, "svc", "ns", second.rotateAt, second.caBundle)
	if cas, _ := parseCerts(third.caBundle); len(cas) != 2 || cas[1].Equal(oldCA[0]) {
		t.Error("the second rotation kept the first CA")
	}
	expired := mustCert(t, "svc", "ns", certEpoch.Add(3*CertificateValidity), first.caBundle)
	if cas, _ := parseCerts(expired.caBundle); len(cas) != 1 {
		t.Errorf("an expired old CA is kept in the bundle: %d CAs", len(cas))
	}
}
