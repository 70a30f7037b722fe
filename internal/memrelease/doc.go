// Package memrelease gives a server's memory back to the kernel when its
// requests stop: after a burst of work the Go heap holds the garbage the
// collector has not reached yet and the runtime keeps freed pages for a
// while, so the process's RSS stays at its peak long after the load is gone.
// A Releaser, told of each request, collects garbage and returns the free
// pages (runtime/debug.FreeOSMemory) once the server has had no request for
// a quiet period and enough was allocated since the last time. It collects
// twice: what sync.Pools hold survives one collection.
package memrelease
