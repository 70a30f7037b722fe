package catalogd_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// TestAnswerFileOverGRPC: answers kept in the answer file, several buffers
// long, and the ListBundles answer kept there reach clients over gRPC byte
// for byte as the answers built from the catalog, request after request.
func TestAnswerFileOverGRPC(t *testing.T) {
	root := t.TempDir()
	sizes := map[string]int{"small": 100, "two": 70 << 10, "many": 600 << 10}
	for pkg, n := range sizes {
		writeBundle(t, root, bundleSpec{pkg: pkg, version: "1.0.0", channels: []string{"stable"}, extra: map[string]string{
			"data.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: data\ndata:\n  blob: " + strings.Repeat("x", n) + "\n",
		}})
	}
	c := loadDir(t, root)
	// The reference: answers built anew, nothing kept.
	ref := api.NewRegistryClient(startServer(t, catalogd.NewHolder(c), catalogd.WithLimits(withAnswerBytes(0))))
	conn := startServer(t, catalogd.NewHolder(c), catalogd.WithAnswerDir(t.TempDir(), 0))
	cl := api.NewRegistryClient(conn)
	want := map[string][]byte{}
	for pkg := range sizes {
		b, err := ref.GetBundleForChannel(context.Background(), &api.GetBundleInChannelRequest{PkgName: pkg, ChannelName: "stable"})
		if err != nil {
			t.Fatal(err)
		}
		if want[pkg], err = proto.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	// ListBundles, built and kept in the answer file on the first call,
	// read back from it on the next ones.
	listAll := func(cl api.RegistryClient) [][]byte {
		t.Helper()
		stream, err := cl.ListBundles(context.Background(), &api.ListBundlesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		bs, err := recvAll[api.Bundle](stream)
		if err != nil {
			t.Fatal(err)
		}
		out := make([][]byte, len(bs))
		for i, b := range bs {
			if out[i], err = proto.Marshal(b); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	wantList := listAll(ref)
	for round := 0; round < 3; round++ {
		got := listAll(cl)
		if len(got) != len(wantList) {
			t.Fatalf("ListBundles round %d: %d entries, want %d", round, len(got), len(wantList))
		}
		for i := range got {
			if string(got[i]) != string(wantList[i]) {
				t.Errorf("ListBundles round %d: entry %d differs", round, i)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		clients int
		rounds  int
	}{
		{name: "one client", clients: 1, rounds: 3},
		{name: "eight clients", clients: 8, rounds: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, tc.clients)
			for i := 0; i < tc.clients; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := 0; r < tc.rounds; r++ {
						for pkg := range sizes {
							b, err := cl.GetBundleForChannel(context.Background(), &api.GetBundleInChannelRequest{PkgName: pkg, ChannelName: "stable"})
							if err != nil {
								errs <- err
								return
							}
							got, err := proto.Marshal(b)
							if err != nil {
								errs <- err
								return
							}
							if string(got) != string(want[pkg]) {
								errs <- fmt.Errorf("round %d: %s: %d bytes differing from the %d built anew", r, pkg, len(got), len(want[pkg]))
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func withAnswerBytes(n int64) catalogd.Limits {
	l := catalogd.DefaultLimits()
	l.AnswerCacheBytes = n
	return l
}
