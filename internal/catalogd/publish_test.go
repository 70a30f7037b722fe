package catalogd_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	"github.com/go-logr/logr"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/publish"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

const (
	adminToken      = "admin-token-0123456789"
	lighthouseToken = "lighthouse-token-0123456789"
	// signalsToken covers lighthouse-operator and signal-store.
	signalsToken = "signals-token-0123456789"
)

type publishEnv struct {
	client  catalogv1.CatalogServiceClient
	holder  *catalogd.Holder
	metrics *catalogd.Metrics
	stop    func()
}

// startPublishing serves the sample catalog plus what is published in dataDir.
func startPublishing(t *testing.T, dataDir string, opts ...catalog.Option) *publishEnv {
	t.Helper()
	return startPublishingWith(t, dataDir, catalogd.DefaultLimits(), opts...)
}

// startPublishingWith is startPublishing with other limits.
func startPublishingWith(t *testing.T, dataDir string, limits catalogd.Limits, opts ...catalog.Option) *publishEnv {
	t.Helper()
	tokens, err := publish.ParseTokens("tokens", []byte(adminToken+"\n"+lighthouseToken+" lighthouse-operator\n"+signalsToken+" lighthouse-operator,signal-store\n"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := publish.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	m := catalogd.NewMetrics()
	h := catalogd.NewHolder(nil)
	r := catalogd.NewReloader(h, []catalog.Source{{Name: "bundles", FS: bundles.FS}}, logr.Discard(), m, opts...)
	pub, err := catalogd.NewPublisher(store, tokens, r, logr.Discard(), m, catalogd.WithPublishLimits(limits))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(context.Background(), r.Sources(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.Swap(c)
	conn := startServer(t, h, catalogd.WithPublisher(pub), catalogd.WithMetrics(m), catalogd.WithLimits(limits))
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = conn.Close()
		_ = store.Close()
	}
	t.Cleanup(stop)
	return &publishEnv{client: catalogv1.NewCatalogServiceClient(conn), holder: h, metrics: m, stop: stop}
}

// upload packs a bundle directory and publishes it with token.
func upload(t *testing.T, client catalogv1.CatalogServiceClient, token, dir string) (*catalogv1.PublishResponse, error) {
	t.Helper()
	files, err := publish.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := publish.Pack(files)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if token != "" {
		ctx = publish.WithToken(ctx, token)
	}
	return publish.Upload(ctx, client, archive, &catalogv1.PublishHeader{}, nil)
}

func wantCode(t *testing.T, err error, code codes.Code, contains ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want %s", err, code)
	}
	for _, c := range contains {
		if !strings.Contains(status.Convert(err).Message(), c) {
			t.Errorf("message %q does not contain %q", status.Convert(err).Message(), c)
		}
	}
}

func TestPublishJoinsPackageAndWakesWatchers(t *testing.T) {
	env := startPublishing(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watch, err := env.client.Watch(ctx, &catalogv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}

	dir := writeBundle(t, t.TempDir(), bundleSpec{pkg: "lighthouse-operator", version: "1.5.0", channels: []string{"fast"}, replaces: "lighthouse-operator.v1.4.0"})
	resp, err := upload(t, env.client, lighthouseToken, dir)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPackage() != "lighthouse-operator" || resp.GetVersion() != "1.5.0" || resp.GetName() != "lighthouse-operator.v1.5.0" ||
		!strings.HasPrefix(resp.GetDigest(), "sha256:") || strings.Join(resp.GetChannels(), ",") != "fast" || resp.GetUnchanged() {
		t.Fatalf("response %v", resp)
	}
	if resp.GetCatalogDigest() == first.GetInfo().GetDigest() || resp.GetCatalogDigest() != env.holder.Catalog().Digest {
		t.Fatalf("catalog digest %s; before %s, served %s", resp.GetCatalogDigest(), first.GetInfo().GetDigest(), env.holder.Catalog().Digest)
	}
	// The published bundle announces its manifests digest, and its
	// manifests hash to it.
	b, err := env.client.GetBundle(ctx, &catalogv1.GetBundleRequest{Package: "lighthouse-operator", Version: "1.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := catalog.ManifestsDigest(manifestsOf(b)); len(b.GetManifests()) == 0 || b.GetManifestsDigest() != got {
		t.Errorf("published bundle: %d manifests hash to %s, announced %q", len(b.GetManifests()), got, b.GetManifestsDigest())
	}
	// Watchers hear of the new digest.
	for {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetInfo().GetDigest() == resp.GetCatalogDigest() {
			break
		}
	}
	// The bundle joined the static package: head of fast, a successor of 1.4.0.
	pkg, err := env.client.GetPackage(ctx, &catalogv1.GetPackageRequest{Name: "lighthouse-operator"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range pkg.GetChannels() {
		if ch.GetName() == "fast" && ch.GetHead() != "lighthouse-operator.v1.5.0" {
			t.Errorf("fast head %s", ch.GetHead())
		}
		if ch.GetName() == "stable" && ch.GetHead() != "lighthouse-operator.v1.3.0" {
			t.Errorf("stable head %s", ch.GetHead())
		}
	}
	succ, err := env.client.GetSuccessors(ctx, &catalogv1.GetSuccessorsRequest{Package: "lighthouse-operator", Channel: "fast", FromVersion: "1.4.0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(succ.GetSuccessors()) != 1 || succ.GetSuccessors()[0].GetEntry().GetName() != "lighthouse-operator.v1.5.0" {
		t.Fatalf("successors of 1.4.0: %v", succ.GetSuccessors())
	}
	if c := env.holder.Catalog(); len(c.Problems.Errors()) != 0 {
		t.Errorf("problems: %v", c.Problems)
	}

	// Identical content: an idempotent success, nothing changes.
	again, err := upload(t, env.client, lighthouseToken, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.GetUnchanged() || again.GetDigest() != resp.GetDigest() || again.GetCatalogDigest() != resp.GetCatalogDigest() {
		t.Fatalf("republish: %v", again)
	}
	// Other content under the same version: refused, both digests named.
	other := writeBundle(t, t.TempDir(), bundleSpec{pkg: "lighthouse-operator", version: "1.5.0", channels: []string{"fast"}, replaces: "lighthouse-operator.v1.4.0", skips: []string{"lighthouse-operator.v1.3.0"}})
	_, err = upload(t, env.client, lighthouseToken, other)
	wantCode(t, err, codes.AlreadyExists, resp.GetDigest(), "lighthouse-operator 1.5.0 is already published")
	otherFiles, _ := publish.ReadDir(other)
	wantCode(t, err, codes.AlreadyExists, otherFiles.Digest())
	// A version served from the static catalog cannot be replaced either.
	static := writeBundle(t, t.TempDir(), bundleSpec{pkg: "lighthouse-operator", version: "1.4.0", channels: []string{"fast"}})
	_, err = upload(t, env.client, lighthouseToken, static)
	wantCode(t, err, codes.AlreadyExists, "lighthouse-operator 1.4.0 is already served from bundles/lighthouse-operator/1.4.0")
}

func TestPublishAuth(t *testing.T) {
	env := startPublishing(t, t.TempDir())
	dir := writeBundle(t, t.TempDir(), bundleSpec{pkg: "harbor-operator", version: "0.1.0", channels: []string{"alpha"}})
	_, err := upload(t, env.client, "", dir)
	wantCode(t, err, codes.Unauthenticated, "no bearer token")
	_, err = upload(t, env.client, "not-a-valid-token-at-all", dir)
	wantCode(t, err, codes.PermissionDenied, "not valid")
	_, err = upload(t, env.client, lighthouseToken, dir)
	wantCode(t, err, codes.PermissionDenied, `may not publish package "harbor-operator"`)
	_, err = env.client.Deprecate(context.Background(), &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Message: "x"})
	wantCode(t, err, codes.Unauthenticated)
	_, err = env.client.Deprecate(publish.WithToken(context.Background(), lighthouseToken), &catalogv1.DeprecateRequest{Package: "signal-store", Message: "x"})
	wantCode(t, err, codes.PermissionDenied, `"signal-store"`)
	// Reads stay open.
	if _, err := env.client.ListPackages(context.Background(), &catalogv1.ListPackagesRequest{}); err != nil {
		t.Fatal(err)
	}
	// A new package needs a token for every package.
	if _, err := upload(t, env.client, adminToken, dir); err != nil {
		t.Fatal(err)
	}
	if env.holder.Catalog().Package("harbor-operator") == nil {
		t.Fatal("harbor-operator not served")
	}
}

func TestPublishRejectsBadBundles(t *testing.T) {
	env := startPublishing(t, t.TempDir())
	root := t.TempDir()

	noChannels := writeBundle(t, root, bundleSpec{pkg: "harbor-operator", version: "0.1.0", channels: []string{"alpha"}})
	writeFile(t, filepath.Join(noChannels, "metadata", "annotations.yaml"), `annotations:
  operators.operatorframework.io.bundle.mediatype.v1: registry+v1
  operators.operatorframework.io.bundle.package.v1: harbor-operator
`)
	_, err := upload(t, env.client, adminToken, noChannels)
	wantCode(t, err, codes.InvalidArgument,
		"metadata/annotations.yaml: operators.operatorframework.io.bundle.channels.v1: missing; a bundle must belong to at least one channel")
	// The problems are also structured details.
	var found bool
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			found = br.GetFieldViolations()[0].GetField() == "metadata/annotations.yaml: operators.operatorframework.io.bundle.channels.v1"
		}
	}
	if !found {
		t.Errorf("no BadRequest detail naming the field: %v", status.Convert(err).Details())
	}

	badCase := writeBundle(t, t.TempDir(), bundleSpec{pkg: "harbor-operator", version: "0.2.0", channels: []string{"alpha"},
		extra: map[string]string{"svc.yaml": "ApiVersion: v1\nkind: Service\nmetadata:\n  name: x\n"}})
	_, err = upload(t, env.client, adminToken, badCase)
	wantCode(t, err, codes.InvalidArgument, `manifests/svc.yaml: apiVersion: missing (found "ApiVersion"; field names are case-sensitive)`)

	// Valid alone, but it would strand 1.3.0 in stable (two heads).
	stranding := writeBundle(t, t.TempDir(), bundleSpec{pkg: "lighthouse-operator", version: "1.5.0", channels: []string{"stable", "fast"}, replaces: "lighthouse-operator.v1.4.0"})
	_, err = upload(t, env.client, adminToken, stranding)
	wantCode(t, err, codes.InvalidArgument, "the catalog would not serve it as published", `channel "stable" has 2 heads`)
	if env.holder.Catalog().Package("lighthouse-operator").BundleByVersion(semver.MustParse("1.5.0")) != nil {
		t.Fatal("a refused bundle is served")
	}
}

func TestPublishArchiveChecks(t *testing.T) {
	env := startPublishing(t, t.TempDir())
	ctx := publish.WithToken(context.Background(), adminToken)
	send := func(msgs ...*catalogv1.PublishRequest) error {
		stream, err := env.client.Publish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := stream.Send(m); err != nil {
				break
			}
		}
		_, err = stream.CloseAndRecv()
		return err
	}
	header := func(size int64, sum string) *catalogv1.PublishRequest {
		return &catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Header{Header: &catalogv1.PublishHeader{Size: size, Sha256: sum}}}
	}
	chunk := func(b []byte) *catalogv1.PublishRequest {
		return &catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Chunk{Chunk: b}}
	}
	wantCode(t, send(header(publish.MaxArchiveBytes+1, strings.Repeat("0", 64))), codes.ResourceExhausted, "at most")
	wantCode(t, send(chunk([]byte("x"))), codes.InvalidArgument, "first message must be a header")
	wantCode(t, send(header(3, strings.Repeat("0", 64)), chunk([]byte("abc"))), codes.InvalidArgument, "archive sha256 is")
	wantCode(t, send(header(5, publish.SHA256([]byte("abcde"))), chunk([]byte("abc"))), codes.InvalidArgument, "received 3 bytes; the header announced 5")
	garbage := []byte("not a tar at all, not at all")
	wantCode(t, send(header(int64(len(garbage)), publish.SHA256(garbage)), chunk(garbage)), codes.InvalidArgument, "not a tar archive")
}

func TestPublishConcurrentAndRestart(t *testing.T) {
	dataDir := t.TempDir()
	env := startPublishing(t, dataDir)
	root := t.TempDir()
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	// Ten packages of five versions, published in any order: each version
	// skips the lower ones, so whichever arrive first, the graph is sound.
	for i := range n {
		pkg, minor := fmt.Sprintf("pkg-%02d", i%10), i/10
		var skips []string
		for j := range minor {
			skips = append(skips, fmt.Sprintf("%s.v1.%d.0", pkg, j))
		}
		dir := writeBundle(t, root, bundleSpec{pkg: pkg, version: fmt.Sprintf("1.%d.0", minor), channels: []string{"stable"}, skips: skips})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = upload(t, env.client, adminToken, dir)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	check := func(c *catalog.Catalog) {
		t.Helper()
		for i := range n {
			p := c.Package(fmt.Sprintf("pkg-%02d", i%10))
			if p == nil || p.BundleByVersion(semver.MustParse(fmt.Sprintf("1.%d.0", i/10))) == nil {
				t.Errorf("pkg-%02d 1.%d.0 is not served", i%10, i/10)
			}
		}
		if errs := c.Problems.Errors(); len(errs) > 0 {
			t.Errorf("problems: %v", errs)
		}
	}
	check(env.holder.Catalog())
	digest := env.holder.Catalog().Digest
	env.stop()

	again := startPublishing(t, dataDir)
	check(again.holder.Catalog())
	if again.holder.Catalog().Digest != digest {
		t.Errorf("digest after restart %s, before %s", again.holder.Catalog().Digest, digest)
	}
}

func TestDeprecate(t *testing.T) {
	dataDir := t.TempDir()
	env := startPublishing(t, dataDir)
	ctx := publish.WithToken(context.Background(), lighthouseToken)
	before := env.holder.Catalog().Digest
	resp, err := env.client.Deprecate(ctx, &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Version: "1.1.0", Message: "1.1.0 loses beacons; use 1.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCatalogDigest() == before {
		t.Fatal("digest unchanged")
	}
	if _, err := env.client.Deprecate(ctx, &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Channel: "fast", Message: "fast is retired; use stable"}); err != nil {
		t.Fatal(err)
	}
	_, err = env.client.Deprecate(ctx, &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Channel: "nightly", Message: "x"})
	wantCode(t, err, codes.NotFound, `channel "nightly" not found`)
	_, err = env.client.Deprecate(ctx, &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Channel: "fast"})
	wantCode(t, err, codes.InvalidArgument, "message is required")

	check := func(client catalogv1.CatalogServiceClient) {
		t.Helper()
		b, err := client.GetBundle(context.Background(), &catalogv1.GetBundleRequest{Package: "lighthouse-operator", Version: "1.1.0"})
		if err != nil {
			t.Fatal(err)
		}
		if b.GetDeprecation().GetMessage() != "1.1.0 loses beacons; use 1.1.1" {
			t.Errorf("bundle deprecation %v", b.GetDeprecation())
		}
		p, err := client.GetPackage(context.Background(), &catalogv1.GetPackageRequest{Name: "lighthouse-operator"})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range p.GetChannels() {
			if (ch.GetName() == "fast") != (ch.GetDeprecation().GetMessage() == "fast is retired; use stable") {
				t.Errorf("channel %s deprecation %v", ch.GetName(), ch.GetDeprecation())
			}
		}
	}
	check(env.client)
	env.stop()
	check(startPublishing(t, dataDir).client)
}

func TestPublishDisabled(t *testing.T) {
	conn := startServer(t, catalogd.NewHolder(sampleCatalog(t)))
	client := catalogv1.NewCatalogServiceClient(conn)
	dir := writeBundle(t, t.TempDir(), bundleSpec{pkg: "harbor-operator", version: "0.1.0", channels: []string{"alpha"}})
	_, err := upload(t, client, adminToken, dir)
	wantCode(t, err, codes.Unimplemented, "--data-dir")
}
