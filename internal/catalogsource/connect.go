package catalogsource

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// SecurityFor returns how to connect to the catalogd of a CatalogSource
// whose spec.tls is spec (nil: TLS verified against the system roots),
// exactly as the installer connects: the Secrets and ConfigMaps spec names
// are read through reader from namespace only. Errors are *TLSConfigError,
// or errors reading from the API server.
func SecurityFor(ctx context.Context, reader client.Reader, namespace string, spec *v1alpha1.CatalogSourceTLS) (*Security, error) {
	b := &securityBuilder{reader: reader, namespace: namespace}
	return b.build(ctx, spec)
}

// CatalogService is Ferry's native catalog API on the client's connection.
func (c *Client) CatalogService() catalogv1.CatalogServiceClient { return c.api }

// Explain returns the failed TLS handshake (*TLSHandshakeError) behind an
// error of a call on this client, when there is one, else err.
func (c *Client) Explain(err error) error { return c.explain(err) }
