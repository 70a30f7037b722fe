package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/ociimage"
)

// imageResult is the real catalog served from a catalog image.
type imageResult struct {
	layerBytes int64
	push       time.Duration
	cold, warm []time.Duration
	// warmIndex are cache hits that also find the catalog's index.
	warmIndex   []time.Duration
	dirSecond   time.Duration
	coldRSSPeak int64
}

// startRegistry builds and runs hack/registry on a free loopback port.
func startRegistry(ctx context.Context, repo, tmp string) (string, func(), error) {
	bin := filepath.Join(tmp, "registry")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./hack/registry")
	build.Dir = repo
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", nil, fmt.Errorf("building hack/registry: %w", err)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--quiet")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		stop()
		return "", nil, fmt.Errorf("registry did not say where it listens: %q: %w", line, err)
	}
	return addr, stop, nil
}

// measureImage pushes the real catalog as a catalog image to a registry
// process and measures catalogd from start to the first ListPackages
// answer: with an empty image cache (resolve, pull, verify, unpack, load)
// with the digest already unpacked (resolve, parse the unpacked catalog)
// and with the digest unpacked and indexed (resolve, read the index).
func measureImage(ctx context.Context, c config, repo, bin, dir, tmp string, dirSecond time.Duration) (*imageResult, error) {
	addr, stop, err := startRegistry(ctx, repo, tmp)
	if err != nil {
		return nil, err
	}
	defer stop()
	img, err := ociimage.BuildCatalogImage(os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	client, err := ociimage.NewClient(ociimage.WithCacheDir(filepath.Join(tmp, "push-cache")))
	if err != nil {
		return nil, err
	}
	r := &imageResult{dirSecond: dirSecond}
	start := time.Now()
	ref := "oci://" + addr + "/community/catalog:bench"
	if _, err := client.Push(ctx, ref, img); err != nil {
		return nil, err
	}
	r.push = time.Since(start)
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return nil, err
		}
		r.layerBytes += n
	}
	logf("catalog image pushed to %s (%d MiB compressed) in %s", ref, r.layerBytes>>20, r.push.Round(time.Millisecond))
	warmCache := filepath.Join(tmp, "image-cache-warm")
	warmIndex := filepath.Join(tmp, "index-cache-warm")
	const (
		empty   = "empty"
		hit     = "warm, no index"
		indexed = "warm, indexed"
	)
	for i := 0; i < c.repeat; i++ {
		for _, kind := range []string{empty, hit, indexed} {
			cold := kind == empty
			cache, index := warmCache, warmIndex
			switch kind {
			case empty:
				// The first empty start fills the caches the warm starts
				// use, in place: the index names the unpacked files by path.
				if i > 0 {
					cache = filepath.Join(tmp, fmt.Sprintf("image-cache-cold-%d", i))
					index = filepath.Join(tmp, fmt.Sprintf("index-cache-cold-%d", i))
				}
			case hit:
				index = ""
			}
			p, err := startCatalogd(bin, ref, tmp, int(startSeq.Add(1)), "--image-cache-dir", cache, "--index-cache-dir", index, "--poll-interval", "0")
			if err != nil {
				return nil, err
			}
			ready, _, _, err := waitReady(ctx, p, time.Now(), c.startMax)
			if err == nil && cold {
				_, hwm := procStatus(p.cmd.Process.Pid)
				r.coldRSSPeak = max(r.coldRSSPeak, hwm)
			}
			p.stop()
			if err != nil {
				return nil, err
			}
			if cold {
				r.cold = append(r.cold, ready)
				if i > 0 {
					_ = os.RemoveAll(cache)
					_ = os.RemoveAll(index)
				}
			} else if kind == hit {
				r.warm = append(r.warm, ready)
			} else {
				r.warmIndex = append(r.warmIndex, ready)
			}
			logf("  catalog image, %s cache: ready in %s", kind, ready.Round(time.Millisecond))
		}
	}
	return r, nil
}

// fmtDurs is the median of several starts and, when there are several,
// their range.
func fmtDurs(d []time.Duration) string {
	if len(d) < 2 {
		return fmtDur(medianDur(d))
	}
	return fmt.Sprintf("%s (%s–%s)", fmtDur(medianDur(d)), fmtDur(slices.Min(d)), fmtDur(slices.Max(d)))
}

// writeImageTable prints the catalog image measurements.
func writeImageTable(b *strings.Builder, r *imageResult, corpus string) {
	fmt.Fprintf(b, "### Catalog image: %s pushed to a local registry process (%d MiB compressed layer)\n\n", corpus, mib(r.layerBytes))
	b.WriteString("| measurement | Ferry catalogd |\n|---|---|\n")
	fmt.Fprintf(b, "| start → first ListPackages answer, empty image cache (resolve tag, pull, verify digests, unpack, load) | %s |\n", fmtDurs(r.cold))
	fmt.Fprintf(b, "| start → first ListPackages answer, image cache hit, index off (resolve tag, parse the unpacked catalog) | %s |\n", fmtDurs(r.warm))
	fmt.Fprintf(b, "| start → first ListPackages answer, image cache hit with its index (resolve tag, read the index) | %s |\n", fmtDurs(r.warmIndex))
	if r.dirSecond > 0 {
		fmt.Fprintf(b, "| the same catalog from a directory (second start above) | %s |\n", fmtDur(r.dirSecond))
	}
	fmt.Fprintf(b, "| pull, verify and unpack alone (empty cache − cache hit) | %s |\n", fmtDur(medianDur(r.cold)-medianDur(r.warm)))
	fmt.Fprintf(b, "| peak RSS, empty image cache | %d MiB |\n", mib(r.coldRSSPeak))
	target := "not met"
	if medianDur(r.warmIndex) < 200*time.Millisecond {
		target = "met"
	}
	fmt.Fprintf(b, "| target: cache hit < 0.2 s to first answer | %s |\n", target)
}
