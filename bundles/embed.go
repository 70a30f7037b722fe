// Package bundles embeds the sample catalog that catalogd serves when it is
// started without --catalog. See README.md in this directory.
package bundles

import "embed"

// FS holds the sample catalog: <package>/<version>/{manifests,metadata}.
//
//go:embed */*
var FS embed.FS
