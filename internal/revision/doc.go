// Package revision keeps the history of what the installer applied for a
// Subscription: one Revision object per install, upgrade, reconfiguration,
// downgrade or rollback, each naming the bundle, the reason and the content
// digest of the rendered objects, with an outcome (Progressing, Healthy,
// RolledBack, Failed, Superseded).
//
// The objects themselves are gzip-compressed JSON split into chunks of
// 768 KiB, each in an immutable Secret of type
// operators.ferry.dev/revision-blob named by the SHA-256 of its content:
// identical chunks are stored once per namespace, and a Revision stays a
// few hundred bytes whatever the size of the bundle.
//
// # Trust
//
// A Revision is used (listed, loaded, restored) only when it is trusted:
// its content digest is the one the installer recorded for its number in
// the Subscription's status.revisionDigests, which only the installer
// writes; labels and owners are not evidence. The digest is written to the
// status before the Revision is created, so a crash between the two never
// leaves an untrusted revision of the installer's own. Loading checks
// every blob against its name, bounds the compressed and the decompressed
// size by MaxObjectsBytes (a gzip bomb costs no more memory than that), the
// number of blobs, the digest of the objects, and then the objects as
// rendered content is checked (install.CheckRestored). Anything else is an
// *UntrustedError and nothing of it is applied.
//
// # History
//
// Prune keeps a Subscription's newest revisions up to its history limit,
// never the current one, the last healthy one or the one spec.rollbackTo
// names, and then deletes the blobs no Revision in the namespace uses.
package revision
