// Package freeport hands out loopback TCP ports nothing listens on, for
// tests and measurements that start processes which bind them later.
//
// A port is found by listening on 127.0.0.1:0 and closing the listener, so
// until the process it is meant for binds it, the kernel may hand the same
// port out again: two ports asked for one after the other can be the same
// one (seen: an installer given the same port for its metrics and its
// health probe, which then failed with "address already in use"). This
// package remembers every port it handed out in this process and never
// hands one out twice.
//
// Test binaries and end-to-end runs also start processes at the same time
// (make test runs several at once), so a port handed out is reserved for
// the others too, for Reservation (a minute): an empty file named after the
// port in $FERRY_CACHE/ports (~/.cache/ferry/ports), written and checked
// under a lock on that folder. Reservations narrow a race and are best
// effort: without the folder, ports are still never handed out twice in one
// process. Ports taken by programs that do not use this package are not
// known; a bind that fails then is reported by the process that binds.
package freeport
