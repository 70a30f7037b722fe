package install

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Lifetimes of the certificates Ferry generates for webhooks, as OLM v0
// chooses them.
const (
	// CertificateValidity is how long a generated CA and serving
	// certificate are valid.
	CertificateValidity = 730 * 24 * time.Hour
	// CertificateRotationThreshold is how long before it expires a
	// certificate is replaced: an apply within it generates a new CA and
	// serving certificate.
	CertificateRotationThreshold = 24 * time.Hour
	// certificateBackdate is how far before its creation a certificate is
	// valid from, for clocks a little behind.
	certificateBackdate = time.Hour
	// maxCABundleCerts bounds how many CA certificates a bundle keeps: the
	// current one and the one it replaced.
	maxCABundleCerts = 2
	// maxSecretValue bounds the size of a key read back from a Secret.
	maxSecretValue = 64 << 10
)

// servingCert is a serving certificate, its key and the CA bundle that
// trusts it, PEM encoded.
type servingCert struct {
	caBundle []byte
	cert     []byte
	key      []byte
	// rotateAt is when it must be replaced: CertificateRotationThreshold
	// before the earlier expiry of the certificate and its CA.
	rotateAt time.Time
}

// data is the content of its kubernetes.io/tls Secret.
func (c *servingCert) data() map[string][]byte {
	return map[string][]byte{SecretKeyCA: c.caBundle, corev1.TLSCertKey: c.cert, corev1.TLSPrivateKeyKey: c.key}
}

// caHash is the SHA-256 of the CA bundle, hex encoded.
func (c *servingCert) caHash() string {
	sum := sha256.Sum256(c.caBundle)
	return hex.EncodeToString(sum[:])
}

// serviceDNSNames are the names the serving certificate of a Service is for.
func serviceDNSNames(service, namespace string) []string {
	base := service + "." + namespace
	return []string{base, base + ".svc", base + ".svc.cluster.local"}
}

// reuseServingCert returns the certificate in a Secret's data when it may
// be kept at now: the CA bundle, certificate and key parse, the key is the
// certificate's, the first CA of the bundle signed it for exactly the
// Service's DNS names, and neither it nor that CA expires within
// CertificateRotationThreshold. Otherwise the error says why it must be
// replaced.
func reuseServingCert(data map[string][]byte, service, namespace string, now time.Time) (*servingCert, error) {
	for _, k := range []string{SecretKeyCA, corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if len(data[k]) == 0 {
			return nil, fmt.Errorf("%s is missing", k)
		}
		if len(data[k]) > maxSecretValue {
			return nil, fmt.Errorf("%s is larger than %d bytes", k, maxSecretValue)
		}
	}
	cas, err := parseCerts(data[SecretKeyCA])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SecretKeyCA, err)
	}
	certs, err := parseCerts(data[corev1.TLSCertKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corev1.TLSCertKey, err)
	}
	leaf, ca := certs[0], cas[0]
	block, _ := pem.Decode(data[corev1.TLSPrivateKeyKey])
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", corev1.TLSPrivateKeyKey)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corev1.TLSPrivateKeyKey, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !key.PublicKey.Equal(pub) {
		return nil, fmt.Errorf("%s is not the key of the certificate", corev1.TLSPrivateKeyKey)
	}
	want := serviceDNSNames(service, namespace)
	got := slices.Clone(leaf.DNSNames)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return nil, fmt.Errorf("the certificate is for %v, not %v", leaf.DNSNames, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: want[0], CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("the certificate is not valid from the CA: %w", err)
	}
	expiry := leaf.NotAfter
	if ca.NotAfter.Before(expiry) {
		expiry = ca.NotAfter
	}
	rotateAt := expiry.Add(-CertificateRotationThreshold)
	if !now.Before(rotateAt) {
		return nil, fmt.Errorf("it expires at %s, within %s", expiry.UTC().Format(time.RFC3339), CertificateRotationThreshold)
	}
	return &servingCert{caBundle: data[SecretKeyCA], cert: data[corev1.TLSCertKey], key: data[corev1.TLSPrivateKeyKey], rotateAt: rotateAt}, nil
}

// newServingCert generates a CA and a serving certificate for the
// Service's DNS names, both ECDSA P-256 and valid for CertificateValidity
// from now. The CA bundle holds the new CA and, while they are still
// valid, the CA of previous (a bundle read from the Secret being
// replaced): webhook configurations that still name the old CA keep
// working until they are updated.
func newServingCert(service, namespace string, now time.Time, previous []byte) (*servingCert, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notBefore, notAfter := now.Add(-certificateBackdate), now.Add(CertificateValidity)
	caSerial, err := serial()
	if err != nil {
		return nil, err
	}
	leafSerial, err := serial()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: "ferry-webhook-ca@" + service + "." + namespace, Organization: []string{"Ferry"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	names := serviceDNSNames(service, namespace)
	tmpl := &x509.Certificate{
		SerialNumber: leafSerial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if len(previous) <= maxSecretValue {
		if old, err := parseCerts(previous); err == nil && now.Before(old[0].NotAfter) && !bytes.Equal(old[0].Raw, caDER) {
			bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old[0].Raw})...)
		}
	}
	return &servingCert{
		caBundle: bundle,
		cert:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		rotateAt: notAfter.Add(-CertificateRotationThreshold),
	}, nil
}

// parseCerts parses the PEM certificates of b, at most maxCABundleCerts;
// it fails on anything else in b.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := bytes.TrimSpace(b); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("not PEM")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a %s, not a CERTIFICATE", block.Type)
		}
		if len(out) == maxCABundleCerts {
			return nil, fmt.Errorf("holds more than %d certificates", maxCABundleCerts)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("holds no certificate")
	}
	return out, nil
}

// serial is a random 128-bit certificate serial number.
func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}
