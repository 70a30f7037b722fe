// Package catalogsource follows the catalogs CatalogSources point at.
//
// For each CatalogSource the Reconciler runs one follower: it opens
// catalogd's Watch stream and, whenever the announced digest differs from
// the content it holds, fetches a snapshot (GetSnapshot) and puts it in the
// Store. The Store keeps the last good content of every catalog, even while
// its catalogd is unreachable, shares one *catalog.Catalog per digest, and
// fetches bundle manifests (GetBundle) on demand. Subscriptions read
// catalogs from the Store and learn about changes from Store.Events.
package catalogsource
