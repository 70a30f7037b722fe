package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/logging"
	"github.com/ferrydev/ferry/internal/memrelease"
	"github.com/ferrydev/ferry/internal/ociimage"
)

// exitError carries an exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "catalogd:", err)
		return 1
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "catalogd",
		Short:         "Serve operator catalogs over gRPC",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCommand(), newValidateCommand(stdout), newRenderCommand(stdout, stderr),
		newPublishCommand(stdout, stderr), newDeprecateCommand(stdout, stderr))
	return root
}

type serveFlags struct {
	listen, metricsListen string
	catalogs              []string
	strict, watch         bool
	logFormat, logLevel   string
	shutdownTimeout       time.Duration
	publish               publishServeFlags
	images                imageServeFlags
	limits                catalogd.Limits
	memoryLimit           int64
	answerCacheDir        string
	// pprof serves the Go runtime's profiles on the metrics listener.
	pprof bool
	// releaseAfter: memory goes back to the kernel once no request began
	// for this long; 0: never.
	releaseAfter time.Duration
	// answerBytesSet: --answer-cache-bytes was given.
	answerBytesSet bool
}

func newServeCommand() *cobra.Command {
	f := serveFlags{limits: catalogd.DefaultLimits()}
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR] [--catalog DIR|oci://IMAGE]...",
		Short: "Serve catalogs (default: the embedded sample catalog)",
		Long: `Serve one or more catalog directories over gRPC: the operator-registry
api.Registry protocol, Ferry's ferry.catalog.v1.CatalogService, health and
reflection. Each directory is a file-based catalog, a registry+v1 bundle, or a
tree of <package>/<version>/ bundles. Without --catalog the embedded sample
catalog is served. Directories are watched: a change, or SIGHUP, reloads them;
a reload that fails keeps serving the last good catalog.

A catalog oci://REGISTRY/REPOSITORY:TAG (or @sha256:...) is a catalog image:
its file-based catalog is pulled, verified and unpacked into --image-cache-dir,
and the tag is resolved again every --poll-interval and on SIGHUP.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(f.logFormat, f.logLevel)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			f.answerBytesSet = cmd.Flags().Changed("answer-cache-bytes")
			return serve(ctx, log, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:50051", "gRPC listen address")
	fl.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:9090", "address for /metrics, /healthz and /readyz (empty disables)")
	fl.StringArrayVar(&f.catalogs, "catalog", nil, "catalog directory or oci://catalog image to serve (repeatable)")
	fl.BoolVar(&f.strict, "strict", false, "refuse the whole catalog when any bundle is invalid")
	fl.BoolVar(&f.watch, "watch", true, "reload when a catalog directory changes")
	fl.StringVar(&f.logFormat, "log-format", logging.FormatText, "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info or error")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long running calls may finish on SIGTERM")
	addPublishServeFlags(fl, &f.publish)
	addImageServeFlags(fl, &f.images)
	f.limits.AddFlags(fl)
	fl.Int64Var(&f.memoryLimit, "memory-limit", 0, "soft limit of the Go heap in bytes, at which the garbage collector works harder "+
		"(0: once the catalog is loaded, the heap it takes plus 8 MiB of decoded manifests, the answers when they are kept in memory and 128 MiB; "+
		"at most 90% of the container's memory limit, which also applies while loading; GOMEMLIMIT in the environment wins)")
	fl.StringVar(&f.answerCacheDir, "answer-cache-dir", "", "directory of the file (without a name) the kept answers are written to, "+
		"so that they take page cache rather than memory of catalogd (empty: $TMPDIR or /tmp); when it is not writable the answers are kept in memory, "+
		"at most 32 MiB unless --answer-cache-bytes is given")
	fl.DurationVar(&f.releaseAfter, "release-memory-after", memrelease.DefaultQuiet, "when requests stop for this long, collect garbage and give free memory back "+
		"to the kernel, once per burst that allocated at least 32 MiB (0: leave it to the Go runtime, which keeps a burst's memory for minutes)")
	fl.BoolVar(&f.pprof, "pprof", false, "also serve the Go runtime's profiles (/debug/pprof/) on --metrics-listen; "+
		"for diagnosis only: they show the process's memory and code paths to whoever reaches that address")
	return cmd
}

// sources are the directories to serve; the embedded sample catalog when
// no catalog at all (directory or image) is given.
func sources(dirs []string, images int) []catalog.Source {
	if len(dirs) == 0 && images == 0 {
		return []catalog.Source{{Name: "bundles", FS: bundles.FS}}
	}
	out := make([]catalog.Source, 0, len(dirs))
	for _, d := range dirs {
		out = append(out, catalog.DirSource(d))
	}
	return out
}

func serve(ctx context.Context, log logr.Logger, f serveFlags) error {
	if f.limits == (catalogd.Limits{}) {
		f.limits = catalogd.DefaultLimits()
	}
	if err := f.limits.Validate(); err != nil {
		return err
	}
	if f.pprof && f.metricsListen == "" {
		return errors.New("--pprof serves on --metrics-listen, which is empty")
	}
	if f.releaseAfter < 0 {
		return fmt.Errorf("--release-memory-after must not be negative, got %s", f.releaseAfter)
	}
	if f.memoryLimit < 0 {
		return fmt.Errorf("--memory-limit must not be negative, got %d", f.memoryLimit)
	}
	// While the catalog loads, the limit is the one given or the
	// container's; the default is derived from the model once it is loaded.
	if os.Getenv("GOMEMLIMIT") == "" {
		if limit := loadMemoryLimit(f.memoryLimit, cgroupMemoryMax); limit > 0 {
			debug.SetMemoryLimit(limit)
		}
	}
	dirs, imageRefs, err := splitCatalogs(f.catalogs)
	if err != nil {
		return err
	}
	srcs := sources(dirs, len(imageRefs))
	metrics := catalogd.NewMetrics()
	holder := catalogd.NewHolder(nil)
	f.images.applyDefaults()
	if err := f.images.validate(); err != nil {
		return err
	}
	loadOpts := []catalog.Option{catalog.WithStrict(f.strict)}
	if f.images.indexDir != "" && len(imageRefs) > 0 {
		loadOpts = append(loadOpts, catalog.WithIndex(catalog.IndexConfig{Dir: f.images.indexDir, Log: log.WithName("index")}))
	}
	var client *ociimage.Client
	var bundleImages *catalogd.BundleImages
	if f.images.needsClient(len(imageRefs)) {
		if client, err = newImageClient(f.images, metrics); err != nil {
			return err
		}
		if f.images.bundleImages != bundleImagesOff {
			bundleImages = catalogd.NewBundleImages(client, f.images.pullTimeout, bundleImagesMemBytes, log.WithName("bundle-images"))
			loadOpts = append(loadOpts, catalog.WithBundleImages(bundleImages, f.images.bundleImages == bundleImagesEager))
		}
	}
	reloader := catalogd.NewReloader(holder, srcs, log, metrics, loadOpts...)
	var images *catalogd.ImageCatalogs
	if len(imageRefs) > 0 {
		images = catalogd.NewImageCatalogs(client, imageRefs, reloader, log.WithName("images"))
		reloader.SetSources(images.Sources)
		registerImageGauge(metrics, images)
		pullCtx, cancel := context.WithTimeout(ctx, f.images.pullTimeout)
		err = images.Start(pullCtx)
		cancel()
		if err != nil {
			return err
		}
	}
	pub, closeStore, err := setupPublishing(f.publish, f.limits, reloader, log, metrics)
	if err != nil {
		return err
	}
	defer closeStore()
	// Watched before the load, so a change made while it runs is an event
	// for the reloader rather than a reason to load twice. A watch that
	// cannot be set up (more directories than the system's inotify limit)
	// leaves SIGHUP to reload.
	var watch *catalogd.Watch
	if f.watch && len(dirs) > 0 {
		if watch, err = reloader.Watch(); err != nil {
			log.Error(err, "catalog watch not set up; send SIGHUP to reload")
		} else {
			defer func() { _ = watch.Close() }()
		}
	}
	start := time.Now()
	c, err := firstLoad(ctx, reloader.Sources(), loadOpts...)
	if err != nil {
		var se *catalog.StrictError
		if errors.As(err, &se) {
			for _, p := range se.Problems.Errors() {
				log.Info("catalog problem", "severity", p.Severity, "path", p.Path, "field", p.Field, "reason", p.Reason)
			}
		}
		return err
	}
	for _, p := range c.Problems {
		log.Info("catalog problem", "severity", p.Severity, "path", p.Path, "field", p.Field, "reason", p.Reason)
	}
	n := c.Counts()
	log.Info("catalog loaded", "sources", c.Sources, "digest", c.Digest, "packages", n.Packages, "channels", n.Channels,
		"bundles", n.Bundles, "problems", len(c.Problems), "duration", time.Since(start).Round(time.Millisecond))

	holder.Swap(c)
	metrics.ObserveCatalog(c)
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listening for gRPC: %w", err)
	}
	defer lis.Close()
	opts := []catalogd.ServerOption{catalogd.WithLogger(log), catalogd.WithMetrics(metrics), catalogd.WithLimits(f.limits)}
	if images != nil {
		opts = append(opts, catalogd.WithSourceProblems(images.ProblemsOf))
	}
	more, err := serverSecurity(f.publish, pub, lis.Addr(), log)
	if err != nil {
		return err
	}
	// Kept in memory (no writable answer directory), answers get a smaller
	// default budget, unless --answer-cache-bytes says otherwise.
	memoryAnswers := min(f.limits.AnswerCacheBytes, catalogd.DefaultAnswerMemoryBytes)
	if f.answerBytesSet {
		memoryAnswers = f.limits.AnswerCacheBytes
	}
	opts = append(opts, catalogd.WithAnswerDir(f.answerCacheDir, memoryAnswers), catalogd.WithMemoryRelease(f.releaseAfter))
	srv := catalogd.NewServer(holder, append(opts, more...)...)
	heapAnswers := int64(0)
	if inFile, budget, _ := srv.AnswerStore(); !inFile {
		heapAnswers = budget
	}
	// The load's garbage goes back to the kernel; what stays is the model.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if limit, ok := goMemoryLimit(f.memoryLimit, int64(ms.HeapAlloc), heapAnswers, os.Getenv("GOMEMLIMIT")); ok {
		if f.memoryLimit == 0 {
			limit = withinCgroup(limit, cgroupMemoryMax)
		}
		debug.SetMemoryLimit(limit)
		log.Info("memory limit set", "bytes", limit, "model", ms.HeapAlloc, "answersInMemory", heapAnswers)
	}
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(lis) }()
	log.Info("serving gRPC", "address", lis.Addr().String())

	var httpSrv *http.Server
	if f.metricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
		ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
		mux.HandleFunc("/healthz", ok)
		mux.HandleFunc("/readyz", ok)
		if f.pprof {
			registerPprof(mux)
		}
		mlis, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			return fmt.Errorf("listening for metrics: %w", err)
		}
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := httpSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
		log.Info("serving metrics", "address", mlis.Addr().String())
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP)
	defer signal.Stop(signals)
	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	// SIGHUP reloads the directories and checks the images.
	hup := make(chan os.Signal, 1)
	imageHup := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-watchCtx.Done():
				return
			case sig := <-signals:
				select {
				case hup <- sig:
				default:
				}
				select {
				case imageHup <- struct{}{}:
				default:
				}
			}
		}
	}()
	if images != nil {
		go images.Run(watchCtx, f.images.pollInterval, f.images.pullTimeout, imageHup)
	}
	if bundleImages != nil && f.images.bundleImages == bundleImagesLazy {
		// A bundle pulled on request gets its manifests digest announced.
		go bundleImages.Run(watchCtx, time.Second, reloader.Reload)
	}
	if watch != nil {
		go func() {
			if err := reloader.Run(watchCtx, watch, hup); err != nil {
				log.Error(err, "catalog watch stopped; send SIGHUP to reload")
			}
		}()
	} else {
		go func() {
			for {
				select {
				case <-watchCtx.Done():
					return
				case <-hup:
					_ = reloader.Reload(watchCtx)
				}
			}
		}()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", f.shutdownTimeout)
	case err := <-errs:
		return err
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout+time.Second)
	defer cancel()
	srv.Stop(stopCtx, f.shutdownTimeout)
	if httpSrv != nil {
		_ = httpSrv.Shutdown(stopCtx)
	}
	log.Info("stopped")
	return nil
}

// loadGCPercent is the collector's GOGC while the first catalog loads,
// when GOGC is not set: nothing is served yet, and most of what a load
// allocates (files, documents, decoded objects) is garbage soon after, so
// collecting at twice the default growth costs fewer cycles for a peak
// that stays far below what serving takes (the memory limit, when there is
// one, bounds it anyway).
const loadGCPercent = 200

// firstLoad loads the catalog served at start, with loadGCPercent.
func firstLoad(ctx context.Context, srcs []catalog.Source, opts ...catalog.Option) (*catalog.Catalog, error) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(loadGCPercent))
	}
	return catalog.Load(ctx, srcs, opts...)
}

func newValidateCommand(stdout io.Writer) *cobra.Command {
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "validate DIR|oci://IMAGE",
		Short: "Print every problem of a catalog; exit 1 if there is any",
		Long: `Print every problem of the catalog in DIR, or of the catalog image
oci://REGISTRY/REPOSITORY:TAG (pulled, verified and unpacked as serve does), and
a summary line; exit 1 if there is any problem.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := loadReporting(cmd.Context(), args[0], stdout, lf)
			if err != nil {
				return err
			}
			n := c.Counts()
			errs := len(c.Problems.Errors())
			fmt.Fprintf(stdout, "%s: %d packages, %d channels, %d bundles served; %d errors, %d warnings\n",
				name, n.Packages, n.Channels, n.Bundles, errs, len(c.Problems)-errs)
			if len(c.Problems) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	lf.addFlags(cmd.Flags())
	return cmd
}

func newRenderCommand(stdout, stderr io.Writer) *cobra.Command {
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "render DIR|oci://IMAGE",
		Short: "Write a catalog (bundle, bundle tree, FBC or catalog image) as file-based catalog JSON",
		Long: `Write the catalog in DIR, or of the catalog image oci://REGISTRY/REPOSITORY:TAG,
as a file-based catalog on stdout. Problems go to stderr; what is invalid is left
out, and the exit code is 1 if anything was.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := loadReporting(cmd.Context(), args[0], stderr, lf)
			if err != nil {
				return err
			}
			if err := catalog.Render(stdout, c); err != nil {
				return err
			}
			if len(c.Problems.Errors()) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	lf.addFlags(cmd.Flags())
	return cmd
}

// loadFlags are the flags of validate and render for catalog images.
type loadFlags struct {
	registry registryFlags
	cacheDir string
}

func (f *loadFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.cacheDir, "image-cache-dir", defaultImageServeFlags().cacheDir, "for oci://: directory catalog images are unpacked into, by digest")
	f.registry.addFlags(fl, "for oci://: ")
}

// loadReporting loads the catalog in dir, or of the catalog image arg
// names, writes every problem to w and returns the catalog and its name.
func loadReporting(ctx context.Context, arg string, w io.Writer, lf loadFlags) (*catalog.Catalog, string, error) {
	src := catalog.DirSource(arg)
	name := filepath.Clean(arg)
	if ociimage.IsImageRef(arg) {
		if lf.cacheDir == "" {
			lf.cacheDir = defaultImageServeFlags().cacheDir
		}
		client, err := ociimage.NewClient(append(lf.registry.options(), ociimage.WithCacheDir(lf.cacheDir))...)
		if err != nil {
			return nil, "", err
		}
		content, err := client.PullCatalog(ctx, arg)
		if err != nil {
			return nil, "", err
		}
		name = ociimage.SourceName(arg, content.Digest)
		src = catalog.Source{Name: name, Dir: content.Dir, Format: catalog.FormatFBC}
	}
	c, err := catalog.Load(ctx, []catalog.Source{src})
	if err != nil {
		return nil, "", err
	}
	for _, p := range c.Problems {
		fmt.Fprintf(w, "%s: %s\n", p.Severity, p)
	}
	return c, name, nil
}

// memorySlack is what the default memory limit leaves above the model, the
// decoded manifests cache and answers kept in memory: the ListBundles
// answer when it is not in the answer file (about 10 MiB for the community
// catalog), the answer buffers (8 MiB), answers in flight (eight concurrent
// requests for the largest heads hold about 30 MiB) and garbage between
// collections. Less makes the collector run without pause under concurrent
// load: eight clients over the community catalog's heads cost about 1.5×
// the CPU with a 125 MiB limit (64 MiB of slack) as with 190 MiB, and with
// a 112 MiB limit five times the CPU; 190 MiB is within 10% of a 320 MiB
// limit.
const memorySlack = 128 << 20

// goMemoryLimit is the Go memory limit to set once the catalog is loaded:
// flag when given, else model (the heap live after the load) plus the
// decoded manifests cache (catalog.DefaultManifestCacheBytes), the bytes of
// answers kept in memory (answerBytes; 0 when they are in the answer file)
// and memorySlack. With GOMEMLIMIT set (env, which the runtime has applied)
// nothing is set.
func goMemoryLimit(flag, model, answerBytes int64, env string) (int64, bool) {
	if env != "" {
		return 0, false
	}
	if flag > 0 {
		return flag, true
	}
	return model + catalog.DefaultManifestCacheBytes + answerBytes + memorySlack, true
}

// loadMemoryLimit is the memory limit while the catalog loads: flag when
// given, else 90% of the container's (file), else none (0).
func loadMemoryLimit(flag int64, file string) int64 {
	if flag > 0 {
		return flag
	}
	if limit := withinCgroup(math.MaxInt64, file); limit != math.MaxInt64 {
		return limit
	}
	return 0
}

// cgroupMemoryMax is the memory limit of the container (cgroup v2).
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// withinCgroup lowers limit to 90% of the cgroup memory limit in file, when
// there is one, so that the collector works harder before the container is
// killed for memory.
func withinCgroup(limit int64, file string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return limit
	}
	ceiling, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || ceiling <= 0 {
		return limit // "max": no limit
	}
	return min(limit, ceiling/10*9)
}
