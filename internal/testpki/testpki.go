package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a certificate with its private key.
type Cert struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key *ecdsa.PrivateKey
	// CertPEM and KeyPEM are both in PEM ("CERTIFICATE", "EC PRIVATE KEY").
	CertPEM, KeyPEM []byte
}

type options struct {
	hosts               []string
	notBefore, notAfter time.Time
}

// Option changes a certificate before it is signed.
type Option func(*options)

// WithHosts sets the DNS names and IP addresses the certificate is valid
// for (default: "localhost" and 127.0.0.1).
func WithHosts(hosts ...string) Option { return func(o *options) { o.hosts = hosts } }

// WithValidity sets the validity period (default: from an hour ago for a day).
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(o *options) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// NewCA returns a self-signed certificate authority.
func NewCA(t testing.TB, name string, opts ...Option) *Cert {
	t.Helper()
	return create(t, name, nil, true, opts)
}

// Issue returns a certificate signed by c (a CA), usable by servers and
// clients.
func (c *Cert) Issue(t testing.TB, name string, opts ...Option) *Cert {
	t.Helper()
	return create(t, name, c, false, opts)
}

// WriteFiles writes <dir>/<CN>.crt and .key and returns their paths.
func (c *Cert) WriteFiles(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	base := filepath.Join(dir, c.Cert.Subject.CommonName)
	certFile, keyFile = base+".crt", base+".key"
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func create(t testing.TB, name string, parent *Cert, isCA bool, opts []Option) *Cert {
	t.Helper()
	now := time.Now()
	o := options{hosts: []string{"localhost", "127.0.0.1"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(24 * time.Hour)}
	for _, opt := range opts {
		opt(&o)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	} else {
		for _, h := range o.hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{
		Cert: cert, Key: key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}
