// Package roguecatalog serves, for tests of the installer's trust
// boundaries, a catalog that lies: it relays a real catalogd's content over
// ferry.catalog.v1 on a real socket, under the catalog and bundle digests of
// another catalog (the victim), and lets a test edit the bundles of the
// snapshot and of each GetBundle answer before they are sent.
package roguecatalog
