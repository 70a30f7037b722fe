// Command images builds Ferry's container images (internal/images) into an
// OCI image layout, without a container engine, and optionally pushes them.
//
//	go run ./hack/images --out bin/images [--version v0.2.0] [--push registry.example.com/ferry]
//
// It writes <out>/oci (the layout, one image per command, named
// <name>:<version>) and <out>/digests.txt. With --push it also writes
// <out>/deploy.env (IMG_INSTALLER and IMG_CATALOGD pinned by digest, which
// make deploy reads) and <out>/values.yaml (the chart's image values, pinned
// by digest). See docs/deploy.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	out := fs.String("out", "bin/images", "output directory: oci/ (the OCI layout), digests.txt, and with --push deploy.env and values.yaml")
	version := fs.String("version", "", "image tag and version label (default: git describe --tags --always --dirty)")
	revision := fs.String("revision", "", "revision label (default: the commit, git rev-parse HEAD)")
	created := fs.String("created", "", "creation time, RFC 3339 or Unix seconds (default: the commit time, for reproducible digests)")
	push := fs.String("push", "", "push to this repository prefix, as <prefix>/<name>:<version> (e.g. 127.0.0.1:5000/ferry)")
	arch := fs.String("arch", "", "target architecture (default: this machine's)")
	only := fs.String("only", "", "comma-separated image names to build (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	root, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("finding the repository root: %w", err)
	}
	meta, err := metadata(*version, *revision, *created)
	if err != nil {
		return err
	}
	cmds, err := selectCommands(*only)
	if err != nil {
		return err
	}
	var opts []images.BuildOption
	if *arch != "" {
		opts = append(opts, images.WithArch(*arch))
	}
	opts = append(opts, images.WithStderr(os.Stderr))
	built, err := images.Build(ctx, root, meta, cmds, opts...)
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(*out, "oci")
	if err := images.WriteLayout(layoutDir, built, meta.Version); err != nil {
		return err
	}
	var digests strings.Builder
	for _, im := range built {
		fmt.Fprintf(&digests, "%s %s\n", im.Command.Name, im.Digest)
		fmt.Printf("built %s:%s %s\n", im.Command.Name, meta.Version, im.Digest)
	}
	if err := os.WriteFile(filepath.Join(*out, "digests.txt"), []byte(digests.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("OCI layout: %s\n", layoutDir)
	if *push == "" {
		return nil
	}
	pushed, err := images.Push(ctx, built, *push, meta.Version)
	if err != nil {
		return err
	}
	for _, p := range pushed {
		fmt.Printf("pushed %s %s\n", p.Tag, p.Digest)
	}
	if err := os.WriteFile(filepath.Join(*out, "deploy.env"), []byte(images.DeployEnv(pushed)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "values.yaml"), []byte(images.ChartValues(pushed)), 0o644); err != nil {
		return err
	}
	fmt.Printf("make deploy now deploys these digests (%s); helm: -f %s\n",
		filepath.Join(*out, "deploy.env"), filepath.Join(*out, "values.yaml"))
	return nil
}

func selectCommands(only string) ([]images.Command, error) {
	if only == "" {
		return images.Commands, nil
	}
	byName := map[string]images.Command{}
	var names []string
	for _, c := range images.Commands {
		byName[c.Name] = c
		names = append(names, c.Name)
	}
	sort.Strings(names)
	var out []images.Command
	for _, n := range strings.Split(only, ",") {
		c, ok := byName[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("--only: no image %q (images: %s)", n, strings.Join(names, ", "))
		}
		out = append(out, c)
	}
	return out, nil
}

// metadata fills what the flags leave open from git.
func metadata(version, revision, created string) (images.Metadata, error) {
	var m images.Metadata
	var errs []error
	var err error
	if m.Version = version; m.Version == "" {
		if m.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
			errs = append(errs, fmt.Errorf("--version not given: %w", err))
		}
	}
	if m.Revision = revision; m.Revision == "" {
		if m.Revision, err = git("rev-parse", "HEAD"); err != nil {
			errs = append(errs, fmt.Errorf("--revision not given: %w", err))
		}
	}
	if created == "" {
		if created, err = git("log", "-1", "--format=%ct"); err != nil {
			errs = append(errs, fmt.Errorf("--created not given: %w", err))
		}
	}
	if created != "" {
		if secs, perr := strconv.ParseInt(created, 10, 64); perr == nil {
			m.Created = time.Unix(secs, 0).UTC()
		} else if m.Created, perr = time.Parse(time.RFC3339, created); perr != nil {
			errs = append(errs, fmt.Errorf("--created %q: neither RFC 3339 nor Unix seconds", created))
		}
	}
	return m, errors.Join(errs...)
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
