package freeport

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxTries bounds the listens one call makes before it gives up: each try
// finds a port the kernel considers free, so only ports already handed out
// make a call try again.
const maxTries = 64

// Reservation is how long a port handed out stays reserved for the other
// processes that share the reservation folder: time enough for the process
// it was meant for to start and bind it.
const Reservation = time.Minute

var (
	mu     sync.Mutex
	handed = map[int]bool{}
	// listen asks the kernel for a port (replaced in tests).
	listen = func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	// dir is the reservation folder shared between processes; empty: none.
	dir = defaultDir()
	now = time.Now
)

// defaultDir is $FERRY_CACHE/ports, or ~/.cache/ferry/ports.
func defaultDir() string {
	if d := os.Getenv("FERRY_CACHE"); d != "" {
		return filepath.Join(d, "ports")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "ferry", "ports")
}

// Ports returns n distinct loopback ports, none of them handed out before
// by this process, nor in the last Reservation by another process using
// the same reservation folder.
func Ports(n int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	defer lockDir()()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == maxTries*n {
			return nil, fmt.Errorf("no free port on 127.0.0.1 after %d tries: every port the kernel offered was handed out before", tries)
		}
		// Keeping the listener open until every port is found makes the
		// kernel offer a different port on the next listen.
		l, err := listen()
		if err != nil {
			return nil, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, l)
		p := l.Addr().(*net.TCPAddr).Port
		if handed[p] || reservedElsewhere(p) {
			continue
		}
		ports = append(ports, p)
	}
	for _, p := range ports {
		handed[p] = true
		reserve(p)
	}
	return ports, nil
}

// Addr returns "127.0.0.1:PORT" for one port of Ports.
func Addr() (string, error) {
	ps, err := Ports(1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ps[0])), nil
}

// lockDir takes the reservation folder's lock (a no-op without a folder).
// A folder that cannot be made or locked turns the reservations off: they
// only narrow a race, and the in-process record still holds.
func lockDir() (unlock func()) {
	none := func() {}
	if dir == "" || os.MkdirAll(dir, 0o700) != nil {
		return none
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return none
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX) != nil {
		_ = f.Close()
		return none
	}
	return func() { _ = f.Close() }
}

// reservedElsewhere reports whether another process reserved port p less
// than Reservation ago.
func reservedElsewhere(p int) bool {
	if dir == "" {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, strconv.Itoa(p)))
	if err != nil {
		return false
	}
	return now().Sub(st.ModTime()) < Reservation
}

// reserve records port p as handed out now.
func reserve(p int) {
	if dir == "" {
		return
	}
	path := filepath.Join(dir, strconv.Itoa(p))
	if f, err := os.Create(path); err == nil {
		_ = f.Close()
	}
	t := now()
	_ = os.Chtimes(path, t, t)
}
