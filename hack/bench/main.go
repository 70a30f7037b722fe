// Command bench measures catalogd as a real process over loopback against the
// real community catalog and against synthetic catalogs of 1×, 2× and 4× its
// size, and prints markdown tables.
//
//	go run ./hack/bench                      # real catalog, then synthetic 1,2,4
//	go run ./hack/bench -synthetic ''        # real catalog only
//	go run ./hack/bench -synthetic '' -images-only  # the catalog image starts only
//	go run ./hack/bench gen -scale 2 -out DIR
//	go run ./hack/bench profile -catalog DIR -cpuprofile cpu.out
//
// Only 127.0.0.1 is used; every loop is bounded in count and in time.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	corpus    string
	cache     string
	synthetic []int
	repeat    int
	requests  int
	clients   int
	headLoops int
	gvks      int
	phase     time.Duration
	startMax  time.Duration
	out       string
	seed      int64
	images    bool
	// imagesOnly skips the real catalog served from a directory.
	imagesOnly bool
	// profileDir, when set, receives catalogd's heap profiles before and
	// after the concurrent GetBundleForChannel test and its CPU profile
	// during it (catalogd serve --pprof).
	profileDir string
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "gen":
			os.Exit(genMain(os.Args[2:]))
		case "profile":
			os.Exit(profileMain(os.Args[2:]))
		case "tree":
			os.Exit(treeMain(os.Args[2:]))
		case "floor":
			os.Exit(floorMain(os.Args[2:]))
		}
	}
	os.Exit(benchMain(os.Args[1:]))
}

func defaultCache() string {
	if c := os.Getenv("FERRY_CACHE"); c != "" {
		return c
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ferry-cache")
	}
	return filepath.Join(home, ".cache", "ferry")
}

func defaultCorpus() string {
	if c := os.Getenv("FERRY_CORPUS"); c != "" {
		return c
	}
	return "/work/shared/corpus/community-prod-full-fbc.tar.xz"
}

func benchMain(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	var scales string
	fs.StringVar(&c.corpus, "corpus", defaultCorpus(), "the real catalog (tar.xz of an FBC tree); env FERRY_CORPUS")
	fs.StringVar(&c.cache, "cache", defaultCache(), "cache directory for unpacked and generated catalogs; env FERRY_CACHE")
	fs.StringVar(&scales, "synthetic", "1,2,4", "scales of the synthetic catalog to measure (comma-separated; empty skips)")
	fs.IntVar(&c.repeat, "repeat", 3, "starts per kind (first/second) on the real catalog; the median is reported")
	fs.IntVar(&c.requests, "requests", 4000, "GetBundleForChannel requests in the throughput test")
	fs.IntVar(&c.clients, "clients", 8, "concurrent clients in the throughput test")
	fs.IntVar(&c.headLoops, "head-rounds", 2, "rounds of GetBundle over every channel head")
	fs.IntVar(&c.gvks, "gvks", 100, "distinct APIs asked of GetDefaultBundleThatProvides")
	fs.DurationVar(&c.phase, "phase-timeout", 60*time.Second, "time bound of each measurement phase")
	fs.DurationVar(&c.startMax, "start-timeout", 180*time.Second, "time bound for catalogd to answer after start")
	fs.StringVar(&c.out, "out", "", "also write the tables to this file")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the synthetic generator")
	fs.BoolVar(&c.images, "images", true, "also serve the real catalog as a catalog image from a local registry process")
	fs.BoolVar(&c.imagesOnly, "images-only", false, "measure only the real catalog served as a catalog image (with -synthetic \"\")")
	fs.StringVar(&c.profileDir, "profile-dir", "", "write catalogd's heap profiles before and after the concurrent GetBundleForChannel test and once it released memory "+
		"after the last test, and its CPU profile of 10 s from the concurrent test on, to this directory (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, s := range strings.Split(scales, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 16 {
			fmt.Fprintf(os.Stderr, "bench: bad scale %q (1..16)\n", s)
			return 2
		}
		c.synthetic = append(c.synthetic, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runBench(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func runBench(ctx context.Context, c config) error {
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "catalogd")
	logf("building catalogd")
	if err := goBuild(ctx, repo, bin); err != nil {
		return err
	}
	realDir, err := extractCorpus(ctx, c.corpus, filepath.Join(c.cache, "corpus"))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	header := fmt.Sprintf("Measured %s on %s (%s, %d CPUs, %s, %s, load average %s at the start); catalogd built from %s.\n",
		time.Now().Format("2006-01-02 15:04 MST"), host, cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), loadAverage(), gitDescribe(repo))

	var b strings.Builder
	b.WriteString(header + "\n")
	var dirSecond time.Duration
	if !c.imagesOnly {
		logf("real catalog %s", realDir)
		real, err := measureCatalog(ctx, c, bin, realDir, c.repeat, tmp, true)
		if err != nil {
			return fmt.Errorf("real catalog: %w", err)
		}
		writeRealTable(&b, real, filepath.Base(c.corpus))
		writeTargets(&b, real)
		b.WriteString("\n")
		dirSecond = startMed(real.second)
	}
	if c.images || c.imagesOnly {
		logf("real catalog as a catalog image")
		ir, err := measureImage(ctx, c, repo, bin, realDir, tmp, dirSecond)
		if err != nil {
			return fmt.Errorf("catalog image: %w", err)
		}
		writeImageTable(&b, ir, filepath.Base(c.corpus))
	}

	if len(c.synthetic) > 0 {
		var rows []*result
		for _, n := range c.synthetic {
			dir, err := ensureSynthetic(ctx, realDir, filepath.Join(c.cache, "synthetic"), n, c.seed)
			if err != nil {
				return err
			}
			logf("synthetic %d× %s", n, dir)
			r, err := measureCatalog(ctx, c, bin, dir, 1, tmp, false)
			if err != nil {
				return fmt.Errorf("synthetic %d×: %w", n, err)
			}
			r.scale = n
			rows = append(rows, r)
		}
		b.WriteString("\n")
		writeScaleTable(&b, rows)
	}
	fmt.Print(b.String())
	if c.out != "" {
		return os.WriteFile(c.out, []byte(b.String()), 0o644)
	}
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for i := 0; i < 64; i++ {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("not inside the module (no go.mod above the working directory)")
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.Index(l, ":"); i >= 0 {
				return strings.TrimSpace(l[i+1:])
			}
		}
	}
	return runtime.GOARCH
}

// loadAverage is the 1, 5 and 15 minute load average of the machine:
// other work running during a measurement slows it down.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "? RAM"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	return "? RAM"
}
