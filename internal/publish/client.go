package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// Exit codes of "catalogd publish" and "catalogd deprecate".
const (
	ExitOK          = 0
	ExitOther       = 1
	ExitInvalid     = 2 // the bundle is invalid (found locally, or InvalidArgument/ResourceExhausted)
	ExitAuth        = 3 // Unauthenticated or PermissionDenied
	ExitConflict    = 4 // AlreadyExists: that version was published with other content
	ExitUnreachable = 5 // Unavailable or DeadlineExceeded
)

// ExitCode maps an error of Upload or Deprecate to an exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ExitUnreachable
	}
	st, ok := status.FromError(err)
	if !ok {
		return ExitOther
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.ResourceExhausted:
		return ExitInvalid
	case codes.Unauthenticated, codes.PermissionDenied:
		return ExitAuth
	case codes.AlreadyExists:
		return ExitConflict
	case codes.Unavailable, codes.DeadlineExceeded:
		return ExitUnreachable
	default:
		return ExitOther
	}
}

// ClientOptions say how to reach catalogd.
type ClientOptions struct {
	// Server is host:port.
	Server string
	// Plaintext turns TLS off (catalogd accepts it only on loopback, unless
	// started with --allow-insecure-publish).
	Plaintext bool
	// CAFile verifies the server; empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate, for mutual TLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
}

// Dial connects to catalogd.
func Dial(o ClientOptions) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if !o.Plaintext {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
		if o.CAFile != "" {
			pool, err := CertPool("CA file", o.CAFile)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = pool
		}
		if o.CertFile != "" || o.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(cfg)
	}
	return grpc.NewClient(o.Server, grpc.WithTransportCredentials(creds))
}

// ReadToken reads the first non-empty, non-comment line of a token file.
func ReadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return strings.Fields(line)[0], nil
		}
	}
	return "", fmt.Errorf("token file %s holds no token", path)
}

// WithToken adds the bearer token to outgoing calls.
func WithToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// Upload streams an archive to Publish: the header, then chunks of at most
// ChunkSize. progress, when set, is called after each chunk. Size and
// sha256 in hdr are filled in.
func Upload(ctx context.Context, client catalogv1.CatalogServiceClient, archive []byte, hdr *catalogv1.PublishHeader, progress func(sent, total int64)) (*catalogv1.PublishResponse, error) {
	h := &catalogv1.PublishHeader{
		Package: hdr.GetPackage(), Version: hdr.GetVersion(),
		Size: int64(len(archive)), Sha256: SHA256(archive),
	}
	stream, err := client.Publish(ctx)
	if err != nil {
		return nil, err
	}
	send := func(m *catalogv1.PublishRequest) (stop bool, err error) {
		err = stream.Send(m)
		if errors.Is(err, io.EOF) {
			return true, nil // the server answered early; CloseAndRecv has why
		}
		return false, err
	}
	stop, err := send(&catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Header{Header: h}})
	if err != nil {
		return nil, err
	}
	total := int64(len(archive))
	for off := 0; !stop && off < len(archive); {
		end := min(off+ChunkSize, len(archive))
		stop, err = send(&catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Chunk{Chunk: archive[off:end]}})
		if err != nil {
			return nil, err
		}
		off = end
		if progress != nil {
			progress(int64(off), total)
		}
	}
	return stream.CloseAndRecv()
}

// CertPool reads PEM certificates from file; what names the file in errors.
func CertPool(what, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool, err := PEMCertPool(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, file, err)
	}
	return pool, nil
}

// PEMCertPool parses PEM certificates. Text around the PEM blocks is
// ignored, as in CA bundles with comments; a block that is not a
// CERTIFICATE or does not parse is an error naming the block, and so is
// data without any certificate.
func PEMCertPool(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, not a CERTIFICATE", n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}
