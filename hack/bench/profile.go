package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// profileMain loads a catalog in this process (as catalogd serve does) and,
// with -serve, answers GetBundle for every channel head and
// GetDefaultBundleThatProvides through the registry server's methods, writing
// CPU and heap profiles for `go tool pprof`.
func profileMain(args []string) int {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	dir := fs.String("catalog", "", "catalog directory (default: the unpacked real catalog)")
	loads := fs.Int("loads", 3, "how many times to load")
	serve := fs.Bool("serve", false, "profile GetBundle over the channel heads instead of loading")
	rounds := fs.Int("rounds", 5, "with -serve: rounds over the heads")
	cpu := fs.String("cpuprofile", "", "write a CPU profile here")
	mem := fs.String("memprofile", "", "write a heap profile (after the last load) here")
	index := fs.String("index", "", "load through the catalog index kept in this directory, as catalogd does for a catalog image (the first load writes it when missing)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := context.Background()
	if *dir == "" {
		d, err := extractCorpus(ctx, defaultCorpus(), filepath.Join(defaultCache(), "corpus"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return 1
		}
		*dir = d
	}
	src := catalog.DirSource(*dir)
	var opts []catalog.Option
	if *index != "" {
		// The index is only kept for a source with a fingerprint; the
		// directory's own path stands for the image digest here.
		src.Format, src.Fingerprint = catalog.FormatFBC, "profile:"+*dir
		opts = append(opts, catalog.WithIndex(catalog.IndexConfig{Dir: *index}))
		if _, err := catalog.Load(ctx, []catalog.Source{src}, opts...); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return 1
		}
	}
	load := func() (*catalog.Catalog, time.Duration, error) {
		start := time.Now()
		c, err := catalog.Load(ctx, []catalog.Source{src}, opts...)
		return c, time.Since(start), err
	}
	var c *catalog.Catalog
	if *serve {
		var err error
		if c, _, err = load(); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return 1
		}
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *serve {
		srv := catalogd.NewRegistryServer(catalogd.NewHolder(c))
		n, start := 0, time.Now()
		for r := 0; r < *rounds; r++ {
			for _, p := range c.Packages {
				for _, ch := range p.Channels {
					if _, err := srv.GetBundle(ctx, &api.GetBundleRequest{PkgName: p.Name, ChannelName: ch.Name, CsvName: ch.Head}); err != nil {
						fmt.Fprintln(os.Stderr, "profile: GetBundle:", err)
						return 1
					}
					n++
				}
			}
		}
		fmt.Printf("GetBundle: %d calls in %s, %s each\n", n, time.Since(start).Round(time.Millisecond), (time.Since(start) / time.Duration(max(n, 1))).Round(time.Microsecond))
	} else {
		for i := 0; i < *loads; i++ {
			var d time.Duration
			var err error
			c, d, err = load()
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				return 1
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			n := c.Counts()
			fmt.Printf("load %d: %s; %d packages, %d channels, %d bundles; heap in use %d MiB, total allocated %d MiB\n",
				i+1, d.Round(time.Millisecond), n.Packages, n.Channels, n.Bundles, ms.HeapInuse>>20, ms.TotalAlloc>>20)
		}
	}
	if *mem != "" {
		runtime.GC()
		f, err := os.Create(*mem)
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return 1
		}
	}
	runtime.KeepAlive(c)
	return 0
}
