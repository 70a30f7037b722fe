package ociimage

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kinds of pull failure, to be matched with errors.Is.
var (
	// ErrUnauthorized: the registry refused the credentials, or wants some.
	ErrUnauthorized = errors.New("the registry refused access (401/403): give credentials with --registry-config")
	// ErrNotFound: no such repository, tag or manifest.
	ErrNotFound = errors.New("not found in the registry")
	// ErrDigestMismatch: a blob's content does not hash to its digest.
	ErrDigestMismatch = errors.New("content does not match its digest")
	// ErrMediaType: a manifest or layer of a kind this package does not read.
	ErrMediaType = errors.New("unsupported media type")
	// ErrLimit: the image is larger than the limits allow.
	ErrLimit = errors.New("image exceeds a limit")
	// ErrUnsafe: a layer entry would leave the directory it is unpacked into,
	// or is of a type that has no place in a catalog or bundle.
	ErrUnsafe = errors.New("unsafe layer entry")
	// ErrNoContent: the image holds no catalog or bundle where its labels say.
	ErrNoContent = errors.New("no content where the image's labels point")
	// ErrInsecure: plain HTTP to a registry that must speak TLS.
	ErrInsecure = errors.New("plain HTTP not allowed")
)

// PullError is a failed pull: which image, what step, why.
type PullError struct {
	// Ref is the reference as given.
	Ref string
	// Step is what failed: resolve, manifest, config, layer N, unpack, cache.
	Step string
	Err  error
}

func (e *PullError) Error() string { return fmt.Sprintf("pulling %s: %s: %v", e.Ref, e.Step, e.Err) }

func (e *PullError) Unwrap() error { return e.Err }

// classify wraps registry answers in the kinds above, keeping the message.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrDigestMismatch) {
		return err
	}
	// go-containerregistry's verifying reader.
	if strings.Contains(err.Error(), "error verifying sha256 checksum") {
		return fmt.Errorf("%w: %w", ErrDigestMismatch, err)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%w: %w", ErrUnauthorized, err)
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %w", ErrNotFound, err)
			}
		}
	}
	return err
}
