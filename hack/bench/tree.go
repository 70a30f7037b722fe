package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/proto/api"
)

// treeMain measures catalogd on the synthetic bundle tree (gen -layout
// bundle-tree): `catalogd validate DIR` (wall time, CPU time, peak RSS) and
// `catalogd serve --catalog DIR` (time to the first ListPackages answer, RSS
// when ready, GetBundle over every channel head, whose objects are read
// back from the YAML files).
func treeMain(args []string) int {
	fs := flag.NewFlagSet("tree", flag.ContinueOnError)
	corpus := fs.String("corpus", defaultCorpus(), "the real catalog tarball to take the shape from")
	cache := fs.String("cache", defaultCache(), "cache directory")
	seed := fs.Int64("seed", 1, "random seed")
	treeBytes := fs.Int64("tree-bytes", fullTreeBytes, "about how many bytes of YAML the tree holds")
	repeat := fs.Int("repeat", 1, "validate runs; each is reported")
	dir := fs.String("dir", "", "measure this bundle tree instead of the generated one")
	bin := fs.String("catalogd", "", "measure this catalogd binary instead of building one from the checkout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := context.Background()
	if err := runTree(ctx, *corpus, *cache, *seed, *treeBytes, *repeat, *dir, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "tree:", err)
		return 1
	}
	return 0
}

func runTree(ctx context.Context, corpus, cache string, seed, treeBytes int64, repeat int, dir, bin string) error {
	tmp, err := os.MkdirTemp("", "ferry-bench-tree-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	if bin == "" {
		bin = filepath.Join(tmp, "catalogd")
		logf("building catalogd")
		if err := goBuild(ctx, repo, bin); err != nil {
			return err
		}
	}
	if dir == "" {
		realDir, err := extractCorpus(ctx, corpus, filepath.Join(cache, "corpus"))
		if err != nil {
			return err
		}
		if dir, err = ensureTree(ctx, realDir, filepath.Join(cache, "synthetic"), 1, seed, treeBytes); err != nil {
			return err
		}
	}
	files, size := treeSize(dir)
	fmt.Printf("Measured %s (%d CPUs, load average %s at the start); catalogd %s; tree %s: %d files, %d MB\n\n",
		time.Now().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), loadAverage(), bin, dir, files, size/1_000_000)
	fmt.Println("| measurement | value |")
	fmt.Println("|---|---|")
	for i := 0; i < repeat; i++ {
		cmd := exec.CommandContext(ctx, bin, "validate", dir)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return fmt.Errorf("catalogd validate: %w", err)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		summary := lastLine(out.String())
		fmt.Printf("| catalogd validate, run %d: wall / CPU / peak RSS | %s / %s / %d MiB (%s) |\n",
			i+1, fmtDur(wall), fmtDur(cpu), ru.Maxrss>>10, summary)
	}
	p, err := startCatalogd(bin, dir, tmp, 1, "--watch=false")
	if err != nil {
		return err
	}
	defer p.stop()
	started := time.Now()
	ready, _, pkgs, err := waitReady(ctx, p, started, 10*time.Minute)
	if err != nil {
		return err
	}
	rss, hwm := procStatus(p.cmd.Process.Pid)
	fmt.Printf("| catalogd serve: start → first ListPackages answer (%d packages) | %s |\n", pkgs, fmtDur(ready))
	fmt.Printf("| catalogd serve: RSS / peak when ready | %d / %d MiB |\n", mib(rss), mib(hwm))
	fmt.Printf("| memory when ready | %s |\n", readMem(ctx, p))

	conn, err := dial(p.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := api.NewRegistryClient(conn)
	names, err := listPackages(ctx, cl)
	if err != nil {
		return err
	}
	ls, err := cl.ListBundles(ctx, &api.ListBundlesRequest{})
	if err != nil {
		return fmt.Errorf("ListBundles: %w", err)
	}
	entries := 0
	for {
		if _, err := ls.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("ListBundles: %w", err)
			}
			break
		}
		entries++
	}
	fmt.Printf("| memory after ListBundles (%d entries) | %s |\n", entries, readMem(ctx, p))
	var lat []time.Duration
	var errs, bare int
	var moved int64
	start := time.Now()
	for _, n := range names {
		pk, err := cl.GetPackage(ctx, &api.GetPackageRequest{Name: n})
		if err != nil {
			return fmt.Errorf("GetPackage %s: %w", n, err)
		}
		for _, ch := range pk.GetChannels() {
			t0 := time.Now()
			b, err := cl.GetBundle(ctx, &api.GetBundleRequest{PkgName: n, ChannelName: ch.GetName(), CsvName: ch.GetCsvName()})
			lat = append(lat, time.Since(t0))
			switch {
			case err != nil:
				errs++
				continue
			case len(b.GetObject()) == 0:
				bare++ // listed by image only: served without objects
			}
			for _, o := range b.GetObject() {
				moved += int64(len(o))
			}
		}
	}
	total := time.Since(start)
	rss, hwm = procStatus(p.cmd.Process.Pid)
	fmt.Printf("| GetBundle over the %d channel heads (objects read back from disk, or kept answers): p50 / p99 / total | %s / %s / %s (%d MB of objects; %d heads without objects; %d errors) |\n",
		len(lat), fmtDur(pct(lat, 50)), fmtDur(pct(lat, 99)), fmtDur(total), moved/1_000_000, bare, errs)
	fmt.Printf("| catalogd serve: RSS / peak after GetBundle | %d / %d MiB |\n", mib(rss), mib(hwm))
	fmt.Printf("| memory after GetBundle | %s |\n", readMem(ctx, p))
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
