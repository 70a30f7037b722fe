// Package publish is what publishing a bundle to catalogd is made of: the
// bundle archive (packing, bounded unpacking, content digest), an in-memory
// file system for unpacked bundles, the bbolt store of published bundles and
// deprecations, bearer tokens, and the client used by "catalogd publish".
package publish
