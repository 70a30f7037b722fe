package catalogsource

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/publish"
)

// DefaultTLSNamespace is the namespace the Secrets and ConfigMaps named by
// spec.tls are read from when the installer is not told another one: the
// installer's own namespace in config/default.
const DefaultTLSNamespace = "ferry-system"

// Security says how a Client secures its connection to catalogd.
type Security struct {
	// Plaintext turns TLS off.
	Plaintext bool
	// TLS is the client configuration; nil with Plaintext.
	TLS *tls.Config
	// Trust says what the server's certificate is verified against, for
	// messages: "the system roots" or the Secret or ConfigMap of the CA.
	Trust string
	// Fingerprint changes whenever the settings or the content of the
	// Secrets and ConfigMaps they name change.
	Fingerprint string
}

// PlaintextSecurity is a connection without TLS.
func PlaintextSecurity() *Security {
	return &Security{Plaintext: true, Trust: "nothing (plaintext)", Fingerprint: "plaintext"}
}

// SystemRootsSecurity is TLS verified against the system roots, with the
// host of the address as the server name: what a CatalogSource without
// spec.tls gets.
func SystemRootsSecurity() *Security {
	return &Security{TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Trust: "the system roots", Fingerprint: "tls/system-roots"}
}

func (s *Security) credentials() credentials.TransportCredentials {
	if s == nil || s.Plaintext {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(s.TLS.Clone())
}

// TLSConfigError says why the TLS settings of a CatalogSource cannot be
// used: which field, which Secret or ConfigMap and key, and why.
type TLSConfigError struct {
	// Field is the path of the setting, e.g. spec.tls.caBundle.secretRef.
	Field string
	// Kind (Secret or ConfigMap), Namespace and Name of the object read;
	// empty when the settings themselves are wrong.
	Kind, Namespace, Name string
	// Key is the data key concerned; empty when the object itself is the problem.
	Key string
	// Err is the reason.
	Err error
}

func (e *TLSConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	if e.Kind != "" {
		fmt.Fprintf(&b, ": %s %s/%s", e.Kind, e.Namespace, e.Name)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " key %q", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *TLSConfigError) Unwrap() error { return e.Err }

// errObjectNotFound is the reason of a TLSConfigError for a missing object.
var errObjectNotFound = errors.New("not found")

// securityBuilder reads the Secrets and ConfigMaps a CatalogSource's TLS
// settings name, from one namespace only.
type securityBuilder struct {
	reader    client.Reader
	namespace string
	// now is the clock certificates are checked against; time.Now when nil.
	now func() time.Time
}

// build returns the Security for spec (which may be nil: TLS with the
// system roots). Errors are *TLSConfigError, or errors reading from the
// API server.
func (b *securityBuilder) build(ctx context.Context, spec *v1alpha1.CatalogSourceTLS) (*Security, error) {
	if spec == nil {
		return SystemRootsSecurity(), nil
	}
	if spec.InsecurePlaintext {
		if spec.CABundle != nil || spec.ServerName != "" || spec.ClientCertificate != nil {
			// The API server refuses this (CEL); checked again for objects
			// written before the rule existed.
			return nil, &TLSConfigError{Field: "spec.tls.insecurePlaintext", Err: errors.New("excludes caBundle, serverName and clientCertificate")}
		}
		return PlaintextSecurity(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: spec.ServerName}
	sum := sha256.New()
	fmt.Fprintf(sum, "tls\x00%s\x00", spec.ServerName)
	trust := "the system roots"
	if ca := spec.CABundle; ca != nil {
		field, kind, ref := "spec.tls.caBundle.configMapRef", "ConfigMap", ca.ConfigMapRef
		if ca.SecretRef != nil {
			field, kind, ref = "spec.tls.caBundle.secretRef", "Secret", ca.SecretRef
		}
		if ref == nil {
			return nil, &TLSConfigError{Field: "spec.tls.caBundle", Err: errors.New("names neither a ConfigMap nor a Secret")}
		}
		key := ref.Key
		if key == "" {
			key = v1alpha1.DefaultCABundleKey
		}
		data, err := b.read(ctx, field, kind, ref.Name, key)
		if err != nil {
			return nil, err
		}
		pool, err := publish.PEMCertPool(data)
		if err != nil {
			return nil, &TLSConfigError{Field: field, Kind: kind, Namespace: b.namespace, Name: ref.Name, Key: key, Err: err}
		}
		cfg.RootCAs = pool
		trust = fmt.Sprintf("the CA bundle in %s %s/%s key %q", kind, b.namespace, ref.Name, key)
		fmt.Fprintf(sum, "ca\x00%s\x00%s\x00%s\x00%d\x00", kind, ref.Name, key, len(data))
		sum.Write(data)
	}
	if cc := spec.ClientCertificate; cc != nil {
		const field = "spec.tls.clientCertificate.secretRef"
		name := cc.SecretRef.Name
		certPEM, err := b.read(ctx, field, "Secret", name, corev1.TLSCertKey)
		if err != nil {
			return nil, err
		}
		keyPEM, err := b.read(ctx, field, "Secret", name, corev1.TLSPrivateKeyKey)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, &TLSConfigError{Field: field, Kind: "Secret", Namespace: b.namespace, Name: name,
				Key: corev1.TLSCertKey + ", " + corev1.TLSPrivateKeyKey, Err: err}
		}
		leaf := cert.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, &TLSConfigError{Field: field, Kind: "Secret", Namespace: b.namespace, Name: name, Key: corev1.TLSCertKey, Err: err}
			}
		}
		if err := b.checkValidity(leaf); err != nil {
			return nil, &TLSConfigError{Field: field, Kind: "Secret", Namespace: b.namespace, Name: name, Key: corev1.TLSCertKey, Err: err}
		}
		cfg.Certificates = []tls.Certificate{cert}
		fmt.Fprintf(sum, "cert\x00%s\x00%d\x00%d\x00", name, len(certPEM), len(keyPEM))
		sum.Write(certPEM)
		sum.Write(keyPEM)
	}
	return &Security{TLS: cfg, Trust: trust, Fingerprint: "tls/" + hex.EncodeToString(sum.Sum(nil))}, nil
}

// read returns one key of a ConfigMap (data or binaryData) or a Secret.
func (b *securityBuilder) read(ctx context.Context, field, kind, name, key string) ([]byte, error) {
	fail := func(key string, err error) error {
		return &TLSConfigError{Field: field, Kind: kind, Namespace: b.namespace, Name: name, Key: key, Err: err}
	}
	objKey := client.ObjectKey{Namespace: b.namespace, Name: name}
	var data map[string][]byte
	var err error
	switch kind {
	case "Secret":
		s := &corev1.Secret{}
		if err = b.reader.Get(ctx, objKey, s); err == nil {
			data = s.Data
		}
	default:
		cm := &corev1.ConfigMap{}
		if err = b.reader.Get(ctx, objKey, cm); err == nil {
			data = make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
			for k, v := range cm.BinaryData {
				data[k] = v
			}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, fail("", errObjectNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s/%s for %s: %w", kind, b.namespace, name, field, err)
	}
	v, ok := data[key]
	if !ok {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return nil, fail(key, fmt.Errorf("no such key (it has: %s)", orNone(keys)))
	}
	if len(v) == 0 {
		return nil, fail(key, errors.New("empty"))
	}
	return v, nil
}

// checkValidity refuses a certificate that has expired or is not valid yet.
func (b *securityBuilder) checkValidity(c *x509.Certificate) error {
	now := time.Now()
	if b.now != nil {
		now = b.now()
	}
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("certificate %q expired at %s", c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("certificate %q is not valid before %s", c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func orNone(keys []string) string {
	if len(keys) == 0 {
		return "no keys"
	}
	return strings.Join(keys, ", ")
}

// TLSHandshakeError is a failed TLS handshake with catalogd: the server
// answered, but could not be verified (or does not speak TLS).
type TLSHandshakeError struct {
	// Address of the catalogd.
	Address string
	// Trust is what the certificate was verified against.
	Trust string
	// Err is the handshake's error.
	Err error
}

func (e *TLSHandshakeError) Error() string {
	reason := e.Err.Error()
	if errors.Is(e.Err, io.EOF) {
		reason = "the server closed the connection during the handshake (does it serve TLS?)"
	}
	return fmt.Sprintf("TLS handshake with catalog at %s failed (verifying against %s): %s", e.Address, e.Trust, reason)
}

func (e *TLSHandshakeError) Unwrap() error { return e.Err }

// handshakes records the outcome of the last TLS handshake of a connection.
type handshakes struct {
	mu   sync.Mutex
	last error
}

func (h *handshakes) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = err
}

// err is the error of the last handshake, nil when it succeeded or none
// was made.
func (h *handshakes) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// recordingCredentials are TLS credentials that remember the last
// handshake's error: gRPC reports it only as text inside an Unavailable
// status.
type recordingCredentials struct {
	credentials.TransportCredentials
	address, trust string
	rec            *handshakes
}

func (c *recordingCredentials) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	switch {
	case err == nil:
		c.rec.set(nil)
	case ctx.Err() == nil:
		c.rec.set(&TLSHandshakeError{Address: c.address, Trust: c.trust, Err: err})
	}
	return conn, info, err
}

func (c *recordingCredentials) Clone() credentials.TransportCredentials {
	return &recordingCredentials{TransportCredentials: c.TransportCredentials.Clone(), address: c.address, trust: c.trust, rec: c.rec}
}
