// Package images builds Ferry's container images without a container
// engine: each command of Commands is compiled as a static Linux binary
// (CGO_ENABLED=0, -trimpath, no build ID) and put alone into one layer on an
// empty base, with fixed file times, user 65532 and the binary as the
// entrypoint. The image carries the OCI labels
// org.opencontainers.image.{title,version,revision,source,created}; created
// is the commit time, so the same commit and toolchain give the same digests.
//
// Build returns the images, WriteLayout writes them as an OCI image layout
// and Push sends them to a registry. hack/images is the command behind
// make images and make images-push.
package images
