// Package catalog loads operator catalogs into one in-memory model.
//
// Two on-disk formats are understood:
//
//   - registry+v1 bundle directories, as published in the OperatorHub
//     repositories: a single bundle (manifests/ and metadata/), or a tree of
//     <package>/<version>/ bundles. Channels and upgrade edges are derived from
//     the bundles' annotations and ClusterServiceVersions.
//   - file-based catalogs (FBC): a tree of JSON or YAML documents with the
//     olm.package, olm.channel, olm.bundle and olm.deprecations schemas.
//
// Both are turned into the same [Catalog]: packages, channels with entries and
// upgrade edges, bundles with their properties and manifests, deprecations and
// a content digest. Loading never stops at the first bad bundle: every problem
// is recorded as a [Problem] naming the file, the field and the reason, and
// everything that is valid is served. [WithStrict] turns any error into a
// refusal of the whole catalog.
//
// Bundle manifests of large file-based catalogs are not kept in memory: the
// model records where each bundle's document lives and reads it again when a
// client asks for the manifests.
package catalog
