package catalogd

import (
	"net"
	"sync"
)

// limitListener accepts at most cap(sem) connections at once: while that
// many are open, Accept waits for one to close, and new connections wait in
// the kernel's backlog.
type limitListener struct {
	net.Listener
	sem     chan struct{}
	done    chan struct{}
	once    sync.Once
	metrics *Metrics
}

func newLimitListener(l net.Listener, n int, m *Metrics) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{}), metrics: m}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		if l.metrics != nil {
			l.metrics.connLimitReached.Inc()
		}
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	if l.metrics != nil {
		l.metrics.connections.Inc()
	}
	return &limitConn{Conn: c, release: l.release}, nil
}

func (l *limitListener) release() {
	if l.metrics != nil {
		l.metrics.connections.Dec()
	}
	<-l.sem
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when it is closed, once.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
