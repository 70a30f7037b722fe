package freeport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// offered is a listener the fake kernel below hands out: it only has an
// address.
type offered struct {
	net.Listener
	port int
}

func (o offered) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: o.port} }
func (o offered) Close() error   { return nil }

// kernel offers the ports in order, then fails.
func kernel(t *testing.T, ports ...int) {
	t.Helper()
	old := listen
	t.Cleanup(func() { listen = old })
	listen = func() (net.Listener, error) {
		if len(ports) == 0 {
			return nil, &net.OpError{Op: "listen", Net: "tcp", Err: net.UnknownNetworkError("no port left")}
		}
		p := ports[0]
		ports = ports[1:]
		return offered{port: p}, nil
	}
}

func TestPorts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  []int // handed out by earlier calls
		offered []int
		n       int
		want    []int
		wantErr bool
	}{
		{name: "distinct offers", offered: []int{40001, 40002}, n: 2, want: []int{40001, 40002}},
		{name: "a port offered again is passed over", before: []int{40001}, offered: []int{40001, 40003}, n: 1, want: []int{40003}},
		{name: "a kernel that fails is an error", offered: nil, n: 1, wantErr: true},
		{name: "only ports handed out before: gives up", before: []int{40001}, offered: repeat(40001, maxTries), n: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			saved := handed
			handed = map[int]bool{}
			for _, p := range tc.before {
				handed[p] = true
			}
			mu.Unlock()
			t.Cleanup(func() { mu.Lock(); handed = saved; mu.Unlock() })
			reservations(t, "")
			kernel(t, tc.offered...)
			got, err := Ports(tc.n)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Ports(%d) error = %v, want error %v", tc.n, err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Ports(%d) = %v, want %v", tc.n, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Ports(%d) = %v, want %v", tc.n, got, tc.want)
				}
			}
		})
	}
}

func repeat(p, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = p
	}
	return out
}

func TestRealPortsAreNeverHandedOutTwice(t *testing.T) {
	seen := map[int]bool{}
	for i := range 200 {
		ps, err := Ports(1 + i%3)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}

func TestAddrIsBindable(t *testing.T) {
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	_ = l.Close()
}

// reservations points the reservation folder at d ("" for none) for the test.
func reservations(t *testing.T, d string) {
	t.Helper()
	old := dir
	t.Cleanup(func() { dir = old })
	dir = d
}

func TestReservationsOfOtherProcesses(t *testing.T) {
	for _, tc := range []struct {
		name string
		age  time.Duration // of another process's reservation of 40011
		want int
	}{
		{name: "a fresh reservation of another process is passed over", age: time.Second, want: 40012},
		{name: "an expired reservation is taken", age: Reservation + time.Second, want: 40011},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			saved := handed
			handed = map[int]bool{} // this process has handed out nothing
			mu.Unlock()
			t.Cleanup(func() { mu.Lock(); handed = saved; mu.Unlock() })
			d := t.TempDir()
			reservations(t, d)
			other := filepath.Join(d, "40011")
			if err := os.WriteFile(other, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(-tc.age)
			if err := os.Chtimes(other, at, at); err != nil {
				t.Fatal(err)
			}
			kernel(t, 40011, 40012)
			got, err := Ports(1)
			if err != nil {
				t.Fatal(err)
			}
			if got[0] != tc.want {
				t.Fatalf("Ports(1) = %v, want [%d]", got, tc.want)
			}
			st, err := os.Stat(filepath.Join(d, strconv.Itoa(got[0])))
			if err != nil {
				t.Fatalf("the port handed out is not reserved: %v", err)
			}
			if time.Since(st.ModTime()) > 10*time.Second {
				t.Errorf("reservation of %d dates from %s, want now", got[0], st.ModTime())
			}
		})
	}
}
