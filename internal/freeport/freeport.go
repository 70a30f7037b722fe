package freeport

import (
	"fmt"
	"net"
	"strconv"
	"sync"
)

// maxTries bounds the listens one call makes before it gives up: each try
// finds a port the kernel considers free, so only ports already handed out
// make a call try again.
const maxTries = 64

var (
	mu     sync.Mutex
	handed = map[int]bool{}
	// listen asks the kernel for a port (replaced in tests).
	listen = func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
)

// Ports returns n distinct loopback ports, none of them handed out before
// by this process.
func Ports(n int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
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
		if handed[p] {
			continue
		}
		ports = append(ports, p)
	}
	for _, p := range ports {
		handed[p] = true
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
