package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/publish"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// publishServeFlags are the serve flags for publishing and TLS.
type publishServeFlags struct {
	dataDir, tokenFile           string
	tlsCert, tlsKey, tlsClientCA string
	allowInsecurePublish         bool
}

func addPublishServeFlags(fl *pflag.FlagSet, f *publishServeFlags) {
	fl.StringVar(&f.dataDir, "data-dir", "", "directory of the published-bundle store; enables Publish and Deprecate (needs --token-file)")
	fl.StringVar(&f.tokenFile, "token-file", "", "bearer tokens allowed to publish: one per line, \"<token> [package,...]\"; re-read when it changes")
	fl.StringVar(&f.tlsCert, "tls-cert-file", "", "serve gRPC over TLS with this certificate (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key-file", "", "private key of --tls-cert-file (PEM)")
	fl.StringVar(&f.tlsClientCA, "tls-client-ca-file", "", "require client certificates signed by these CAs (mutual TLS)")
	fl.BoolVar(&f.allowInsecurePublish, "allow-insecure-publish", false, "allow publishing over plaintext on a non-loopback address (tokens travel in the clear)")
}

// setupPublishing opens the store and the tokens when --data-dir is set.
func setupPublishing(f publishServeFlags, limits catalogd.Limits, r *catalogd.Reloader, log logr.Logger, m *catalogd.Metrics) (*catalogd.Publisher, func(), error) {
	if f.dataDir == "" {
		if f.tokenFile != "" {
			return nil, nil, errors.New("--token-file needs --data-dir: publishing stores bundles there")
		}
		return nil, func() {}, nil
	}
	if f.tokenFile == "" {
		return nil, nil, errors.New("--data-dir enables publishing, which needs --token-file")
	}
	tokens, err := publish.LoadTokenFile(f.tokenFile, publish.WithTokenObserver(tokenObserver(log, m)))
	if err != nil {
		return nil, nil, err
	}
	store, err := publish.Open(f.dataDir)
	if err != nil {
		return nil, nil, err
	}
	pub, err := catalogd.NewPublisher(store, tokens, r, log.WithName("publish"), m, catalogd.WithPublishLimits(limits))
	if err != nil {
		_ = store.Close()
		return nil, nil, err
	}
	return pub, func() { _ = store.Close() }, nil
}

// tokenObserver logs every change of the tokens file and records it in the
// metrics. A file that is missing or invalid revokes every token: that is
// logged as an error.
func tokenObserver(log logr.Logger, m *catalogd.Metrics) func(publish.TokenFileEvent) {
	return func(ev publish.TokenFileEvent) {
		m.ObserveTokens(ev)
		mode := fmt.Sprintf("%04o", uint32(ev.Mode))
		switch {
		case ev.Err != nil:
			log.Error(ev.Err, "tokens file unusable: every token is revoked until it is fixed", "file", ev.Path, "reason", ev.Reason)
		case ev.Tokens == 0:
			log.Info("the tokens file holds no token: every publish is refused", "file", ev.Path)
		default:
			log.Info("tokens loaded", "file", ev.Path, "tokens", ev.Tokens)
		}
		if ev.Insecure {
			log.Info("warning: the tokens file is readable or writable by group or others; make it 0600 or 0400", "file", ev.Path, "mode", mode)
		}
	}
}

// serverSecurity returns the TLS and publishing options, and refuses
// publishing over plaintext on a non-loopback listener.
func serverSecurity(f publishServeFlags, pub *catalogd.Publisher, addr net.Addr, log logr.Logger) ([]catalogd.ServerOption, error) {
	var opts []catalogd.ServerOption
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if f.tlsClientCA != "" && f.tlsCert == "" {
		return nil, errors.New("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if f.tlsClientCA != "" {
			pool, err := publish.CertPool("client CA file", f.tlsClientCA)
			if err != nil {
				return nil, err
			}
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		opts = append(opts, catalogd.WithGRPCOptions(grpc.Creds(credentials.NewTLS(cfg))))
	}
	if pub == nil {
		return opts, nil
	}
	if f.tlsCert == "" && !isLoopback(addr) {
		if !f.allowInsecurePublish {
			return nil, fmt.Errorf("publishing sends bearer tokens; %s is not a loopback address, so serve TLS (--tls-cert-file, --tls-key-file) or pass --allow-insecure-publish", addr)
		}
		log.Info("publishing over plaintext on a non-loopback address: tokens travel in the clear", "address", addr.String())
	}
	return append(opts, catalogd.WithPublisher(pub)), nil
}

func isLoopback(addr net.Addr) bool {
	if t, ok := addr.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return false
}

// clientFlags are the flags of the commands that talk to a server.
type clientFlags struct {
	opts      publish.ClientOptions
	tokenFile string
	timeout   time.Duration
}

func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.opts.Server, "server", "", "catalogd address, host:port (required)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token (first non-comment line; required)")
	fl.StringVar(&f.opts.CAFile, "ca-file", "", "CA certificates to verify the server (PEM; default: the system's)")
	fl.StringVar(&f.opts.CertFile, "cert-file", "", "client certificate for mutual TLS (PEM)")
	fl.StringVar(&f.opts.KeyFile, "key-file", "", "key of --cert-file (PEM)")
	fl.StringVar(&f.opts.ServerName, "server-name", "", "name to verify in the server's certificate (default: the host of --server)")
	fl.BoolVar(&f.opts.Plaintext, "plaintext", false, "no TLS (the server allows it on loopback only, unless told otherwise)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up after this long")
}

func (f *clientFlags) connect(cmd *cobra.Command) (context.Context, context.CancelFunc, catalogv1.CatalogServiceClient, func(), error) {
	if f.opts.Server == "" || f.tokenFile == "" {
		return nil, nil, nil, nil, errors.New("--server and --token-file are required")
	}
	token, err := publish.ReadToken(f.tokenFile)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	conn, err := publish.Dial(f.opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return publish.WithToken(ctx, token), cancel, catalogv1.NewCatalogServiceClient(conn), func() { _ = conn.Close() }, nil
}

// rpcFailure prints a failed call and returns its exit code.
func rpcFailure(stderr io.Writer, what string, err error) error {
	st := status.Convert(err)
	fmt.Fprintf(stderr, "%s failed: %s: %s\n", what, st.Code(), st.Message())
	return exitError{publish.ExitCode(err)}
}

func newPublishCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var dryRun bool
	var catalogs []string
	var scope string
	var push pushFlags
	cmd := &cobra.Command{
		Use:   "publish [--server ADDR --token-file FILE [--ca-file FILE]] [--push REGISTRY/REPO:TAG] BUNDLE_DIR",
		Short: "Validate a registry+v1 bundle and publish it to a catalogd",
		Long: `Validate a registry+v1 bundle directory (manifests/ and metadata/) with the
rules catalogd applies, then upload it in chunks to a catalogd started with
--data-dir. On success one line is printed on stdout:

  published package=P version=V bundle=NAME digest=sha256:... channels=a,b catalog=sha256:...

("unchanged" instead of "published" when identical content was published
before). Problems go to stderr as "severity: path: field: reason".

With --catalog DIR (the directories the server serves), the bundle is also
checked as the server checks it: it may not claim an API (olm.gvk, shipped
or owned CRD) that another package provides, unless --packages (the
token's packages; default: the bundle's own) covers that package.

With --push REGISTRY/REPOSITORY:TAG the validated bundle is also pushed as a
registry+v1 bundle image (one layer with /manifests and /metadata, the
operators.operatorframework.io.bundle.* labels), before the upload; without
--server it is only pushed. On success one more line is printed:

  pushed package=P version=V bundle=NAME image=REGISTRY/REPOSITORY@sha256:...

Exit codes: 0 published (or unchanged), 2 invalid bundle (found locally or by
the server), 3 authentication or permission refused, 4 conflict (this version
was published with other content), 5 server unreachable or timed out,
1 anything else.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := push.validate(); err != nil {
				return err
			}
			dir := args[0]
			files, err := publish.ReadDir(dir)
			if err != nil {
				fmt.Fprintf(stderr, "reading bundle: %v\n", err)
				return exitError{publish.ExitInvalid}
			}
			info, problems := catalog.ValidateBundle(files.FS())
			name := filepath.ToSlash(filepath.Clean(dir))
			for _, p := range problems {
				p.Path = filepath.ToSlash(filepath.Join(name, p.Path))
				fmt.Fprintf(stderr, "%s: %s\n", p.Severity, p)
			}
			if info == nil {
				fmt.Fprintf(stderr, "%s: invalid bundle (%d errors); nothing was uploaded\n", name, len(problems.Errors()))
				return exitError{publish.ExitInvalid}
			}
			if len(catalogs) > 0 {
				if err := checkClaimsLocally(cmd.Context(), catalogs, scope, info, name, stderr); err != nil {
					return err
				}
			}
			archive, err := publish.Pack(files)
			if err != nil {
				return err
			}
			if len(archive) > publish.MaxArchiveBytes {
				fmt.Fprintf(stderr, "%s: the archive is %d bytes; catalogd accepts at most %d MiB\n", name, len(archive), publish.MaxArchiveBytes>>20)
				return exitError{publish.ExitInvalid}
			}
			if dryRun {
				fmt.Fprintf(stdout, "valid package=%s version=%s bundle=%s digest=%s channels=%s size=%d\n",
					info.Package, info.Version, info.Name, files.Digest(), strings.Join(info.Channels, ","), len(archive))
				return nil
			}
			if push.ref != "" {
				pushCtx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
				err := pushBundle(pushCtx, push, files.FS(), info, stdout, stderr)
				cancel()
				if err != nil || f.opts.Server == "" {
					return err
				}
			}
			ctx, cancel, client, closeConn, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			defer closeConn()
			progress := progressPrinter(stderr, fmt.Sprintf("uploading %s %s", info.Package, info.Version))
			resp, err := publish.Upload(ctx, client, archive, &catalogv1.PublishHeader{Package: info.Package, Version: info.Version.String()}, progress)
			if progress != nil {
				fmt.Fprintln(stderr)
			}
			if err != nil {
				return rpcFailure(stderr, "publish", err)
			}
			verb := "published"
			if resp.GetUnchanged() {
				verb = "unchanged"
			}
			fmt.Fprintf(stdout, "%s package=%s version=%s bundle=%s digest=%s channels=%s catalog=%s\n", verb,
				resp.GetPackage(), resp.GetVersion(), resp.GetName(), resp.GetDigest(), strings.Join(resp.GetChannels(), ","), resp.GetCatalogDigest())
			return nil
		},
	}
	addClientFlags(cmd, &f)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and pack only; do not contact the server")
	cmd.Flags().StringArrayVar(&catalogs, "catalog", nil, "also check the bundle against this catalog directory, as catalogd serves it (repeatable): it may not claim an API another package provides")
	cmd.Flags().StringVar(&scope, "packages", "", "with --catalog: the packages the token covers, as in the server's tokens file (\"*\" for every package; default: the bundle's package)")
	addPushFlags(cmd, &push)
	return cmd
}

// checkClaimsLocally loads the catalog directories as serve would and
// refuses a bundle that claims an API another package of them provides,
// unless scope covers that package. Each claim is printed as an error.
func checkClaimsLocally(ctx context.Context, dirs []string, scope string, info *catalog.BundleInfo, name string, stderr io.Writer) error {
	c, err := catalog.Load(ctx, sources(dirs, 0))
	if err != nil {
		return fmt.Errorf("loading --catalog: %w", err)
	}
	g := &publish.Grant{ID: "--packages", Packages: []string{info.Package}}
	if strings.TrimSpace(scope) != "" {
		g.Packages = publish.ParsePackages(scope)
	}
	err = publish.CheckClaims(c, info, g)
	if err == nil {
		return nil
	}
	var claims interface{ Unwrap() []error }
	n := 1
	if errors.As(err, &claims) {
		n = len(claims.Unwrap())
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "error: %s: %s\n", name, line)
	}
	fmt.Fprintf(stderr, "%s: %d claims on other packages' APIs; nothing was uploaded (a token covering those packages may publish it: --packages)\n", name, n)
	return exitError{publish.ExitAuth}
}

// progressPrinter returns a progress callback when w is a terminal.
func progressPrinter(w io.Writer, label string) func(sent, total int64) {
	file, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := file.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return func(sent, total int64) {
		fmt.Fprintf(w, "\r%s: %.1f/%.1f MiB (%d%%)", label, float64(sent)/(1<<20), float64(total)/(1<<20), sent*100/max(total, 1))
	}
}

func newDeprecateCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	req := &catalogv1.DeprecateRequest{}
	cmd := &cobra.Command{
		Use:   "deprecate --server ADDR --token-file FILE --package P [--bundle NAME | --version V | --channel C] --message TEXT",
		Short: "Mark a package, channel or bundle deprecated on a catalogd",
		Long: `Mark a package, a channel (--channel) or a bundle (--bundle or --version)
deprecated on a catalogd started with --data-dir; installers show the message.
Exit codes as for publish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel, client, closeConn, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			defer closeConn()
			resp, err := client.Deprecate(ctx, req)
			if err != nil {
				return rpcFailure(stderr, "deprecate", err)
			}
			what := "package " + req.GetPackage()
			switch {
			case req.GetChannel() != "":
				what = "channel " + req.GetChannel() + " of " + what
			case req.GetBundle() != "":
				what = "bundle " + req.GetBundle() + " of " + what
			case req.GetVersion() != "":
				what = "version " + req.GetVersion() + " of " + what
			}
			fmt.Fprintf(stdout, "deprecated %s catalog=%s\n", what, resp.GetCatalogDigest())
			return nil
		},
	}
	addClientFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringVar(&req.Package, "package", "", "package (required)")
	fl.StringVar(&req.Bundle, "bundle", "", "bundle (CSV) name to deprecate")
	fl.StringVar(&req.Version, "version", "", "bundle version to deprecate")
	fl.StringVar(&req.Channel, "channel", "", "channel to deprecate")
	fl.StringVar(&req.Message, "message", "", "what users should do instead (required)")
	return cmd
}
