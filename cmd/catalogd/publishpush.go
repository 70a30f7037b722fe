package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/ociimage"
	"github.com/ferrydev/ferry/internal/publish"
)

// pushFlags are the flags of publish that push the bundle as an image.
type pushFlags struct {
	ref      string
	registry registryFlags
}

func addPushFlags(cmd *cobra.Command, f *pushFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.ref, "push", "", "also push the bundle as a registry+v1 bundle image to REGISTRY/REPOSITORY:TAG (without --server: only push)")
	f.registry.addFlags(fl, "with --push: ")
}

// validate checks --push before anything is read or sent.
func (f pushFlags) validate() error {
	if f.ref == "" {
		if f.registry.set() {
			return errors.New("--registry-config, --registry-ca-file and --insecure-registry go with --push")
		}
		return nil
	}
	if _, err := ociimage.ParseReference(f.ref); err != nil {
		return fmt.Errorf("--push: %w", err)
	}
	return nil
}

// pushBundle builds the bundle image of the validated bundle in fsys and
// pushes it; it prints one line on stdout:
//
//	pushed package=P version=V bundle=NAME image=REGISTRY/REPOSITORY@sha256:...
func pushBundle(ctx context.Context, f pushFlags, fsys fs.FS, info *catalog.BundleInfo, stdout, stderr io.Writer) error {
	img, err := ociimage.BuildBundleImage(fsys)
	if err != nil {
		fmt.Fprintf(stderr, "building the bundle image: %v\n", err)
		return exitError{publish.ExitInvalid}
	}
	client, err := ociimage.NewClient(f.registry.options()...)
	if err != nil {
		return err
	}
	pinned, err := client.Push(ctx, f.ref, img)
	if err != nil {
		fmt.Fprintf(stderr, "push failed: %v\n", err)
		switch {
		case errors.Is(err, ociimage.ErrUnauthorized):
			return exitError{publish.ExitAuth}
		case errors.Is(err, ociimage.ErrInsecure):
			return exitError{publish.ExitOther}
		default:
			return exitError{publish.ExitUnreachable}
		}
	}
	fmt.Fprintf(stdout, "pushed package=%s version=%s bundle=%s image=%s\n", info.Package, info.Version, info.Name, pinned)
	return nil
}
