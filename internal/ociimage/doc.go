// Package ociimage pulls catalog and bundle images from OCI registries and
// keeps their content unpacked on disk, keyed by image digest.
//
// A catalog image holds a file-based catalog under the directory its
// operators.operatorframework.io.index.configs.v1 label names (/configs when
// unset); a bundle image holds a registry+v1 bundle under manifests/ and
// metadata/. Only those directories are unpacked. Every blob is checked
// against its digest (and every layer against its diff ID), extraction never
// leaves its directory (no absolute or parent paths, no symlink or hardlink
// escapes, no devices), and sizes and entry counts are bounded by Limits.
//
// The package also builds and pushes such images (Build*, Push), the layout
// opm and operator-sdk produce, for catalogd publish and for tests.
package ociimage
