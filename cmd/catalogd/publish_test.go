package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/publish"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

const testToken = "ci-token-0123456789abcdef"

// writeTestBundle writes a registry+v1 bundle and returns its directory.
func writeTestBundle(t *testing.T, root, pkg, version, channel, replaces string, skips []string, extra map[string]string) string {
	t.Helper()
	dir := filepath.Join(root, pkg, version)
	files := map[string]string{
		"metadata/annotations.yaml": fmt.Sprintf(`annotations:
  operators.operatorframework.io.bundle.mediatype.v1: registry+v1
  operators.operatorframework.io.bundle.manifests.v1: manifests/
  operators.operatorframework.io.bundle.metadata.v1: metadata/
  operators.operatorframework.io.bundle.package.v1: %s
  operators.operatorframework.io.bundle.channels.v1: %s
  operators.operatorframework.io.bundle.channel.default.v1: %s
`, pkg, channel, channel),
	}
	var csv strings.Builder
	fmt.Fprintf(&csv, "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: %s.v%s\nspec:\n  version: %s\n", pkg, version, version)
	if replaces != "" {
		fmt.Fprintf(&csv, "  replaces: %s\n", replaces)
	}
	if len(skips) > 0 {
		csv.WriteString("  skips:\n")
		for _, s := range skips {
			fmt.Fprintf(&csv, "  - %s\n", s)
		}
	}
	files["manifests/"+pkg+".clusterserviceversion.yaml"] = csv.String()
	for k, v := range extra {
		files["manifests/"+k] = v
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeTokens(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestPublishCommand(t *testing.T) {
	tokens := writeTokens(t, "# CI\n"+testToken+" lighthouse-operator,harbor-operator\n")
	clientToken := writeTokens(t, testToken+"\n")
	addr := startServe(t, serveFlags{publish: publishServeFlags{dataDir: t.TempDir(), tokenFile: tokens}})
	root := t.TempDir()
	dir := writeTestBundle(t, root, "lighthouse-operator", "1.5.0", "fast", "lighthouse-operator.v1.4.0", nil, nil)
	publishArgs := func(token, d string) []string {
		return []string{"publish", "--server", addr, "--plaintext", "--token-file", token, d}
	}

	code, out, errOut := runCLI(publishArgs(clientToken, dir)...)
	if code != 0 || !strings.HasPrefix(out, "published package=lighthouse-operator version=1.5.0 bundle=lighthouse-operator.v1.5.0 digest=sha256:") ||
		!strings.Contains(out, " channels=fast catalog=sha256:") || strings.Count(out, "\n") != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := runCLI(publishArgs(clientToken, dir)...); code != 0 || !strings.HasPrefix(out, "unchanged package=lighthouse-operator version=1.5.0") {
		t.Fatalf("republish: exit %d, %q", code, out)
	}
	changed := writeTestBundle(t, t.TempDir(), "lighthouse-operator", "1.5.0", "fast", "lighthouse-operator.v1.4.0", []string{"lighthouse-operator.v1.3.0"}, nil)
	if code, _, errOut := runCLI(publishArgs(clientToken, changed)...); code != publish.ExitConflict || !strings.Contains(errOut, "AlreadyExists") {
		t.Fatalf("conflict: exit %d, %q", code, errOut)
	}
	wrong := writeTokens(t, "wrong-token-0123456789\n")
	if code, _, errOut := runCLI(publishArgs(wrong, dir)...); code != publish.ExitAuth || !strings.Contains(errOut, "PermissionDenied") {
		t.Fatalf("wrong token: exit %d, %q", code, errOut)
	}
	other := writeTestBundle(t, root, "signal-store", "9.0.0", "stable", "", nil, nil)
	if code, _, errOut := runCLI(publishArgs(clientToken, other)...); code != publish.ExitAuth || !strings.Contains(errOut, `may not publish package "signal-store"`) {
		t.Fatalf("other package: exit %d, %q", code, errOut)
	}
	bad := writeTestBundle(t, root, "harbor-operator", "0.1.0", "alpha", "", nil, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"})
	code, out, errOut = runCLI(publishArgs(clientToken, bad)...)
	want := "error: " + filepath.ToSlash(bad) + "/manifests/cm.yaml: metadata.name: missing"
	if code != publish.ExitInvalid || out != "" || !strings.Contains(errOut, want) || !strings.Contains(errOut, "nothing was uploaded") {
		t.Fatalf("invalid: exit %d, stdout %q, stderr %q (want %q)", code, out, errOut, want)
	}
	if code, out, _ := runCLI("publish", "--dry-run", bad[:len(bad)-len("0.1.0")]+"0.1.0"); code != publish.ExitInvalid || out != "" {
		t.Fatalf("dry run of an invalid bundle: exit %d", code)
	}
	if code, out, _ := runCLI("publish", "--dry-run", dir); code != 0 || !strings.HasPrefix(out, "valid package=lighthouse-operator version=1.5.0") {
		t.Fatalf("dry run: exit %d, %q", code, out)
	}
	unreachable := []string{"publish", "--server", freeAddr(t), "--plaintext", "--token-file", clientToken, "--timeout", "3s", dir}
	if code, _, errOut := runCLI(unreachable...); code != publish.ExitUnreachable {
		t.Fatalf("unreachable: exit %d, %q", code, errOut)
	}
	code, out, errOut = runCLI("deprecate", "--server", addr, "--plaintext", "--token-file", clientToken,
		"--package", "lighthouse-operator", "--version", "1.5.0", "--message", "use 1.6.0")
	if code != 0 || !strings.HasPrefix(out, "deprecated version 1.5.0 of package lighthouse-operator catalog=sha256:") {
		t.Fatalf("deprecate: exit %d, %q, %q", code, out, errOut)
	}
}

func TestServeRefusesPlaintextPublishOffLoopback(t *testing.T) {
	f := serveFlags{listen: "0.0.0.0:0", publish: publishServeFlags{dataDir: t.TempDir(), tokenFile: writeTokens(t, testToken+"\n")}}
	err := serve(context.Background(), logr.Discard(), f)
	if err == nil || !strings.Contains(err.Error(), "--allow-insecure-publish") {
		t.Fatalf("got %v", err)
	}
	if err := serve(context.Background(), logr.Discard(), serveFlags{publish: publishServeFlags{dataDir: t.TempDir()}}); err == nil || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("without tokens: %v", err)
	}
}

// writeCert writes a certificate for 127.0.0.1 signed by ca (self-signed
// when ca is nil) and returns the paths and the parsed pair.
type testCert struct {
	certFile, keyFile string
	cert              *x509.Certificate
	key               *ecdsa.PrivateKey
}

func writeCert(t *testing.T, name string, ca *testCert, isCA bool) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kd, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	c := &testCert{certFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key"), cert: cert, key: key}
	_ = os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return c
}

func TestPublishOverMutualTLS(t *testing.T) {
	ca := writeCert(t, "ca", nil, true)
	server := writeCert(t, "server", ca, false)
	client := writeCert(t, "client", ca, false)
	f := serveFlags{listen: freeAddr(t), publish: publishServeFlags{
		dataDir: t.TempDir(), tokenFile: writeTokens(t, testToken+"\n"),
		tlsCert: server.certFile, tlsKey: server.keyFile, tlsClientCA: ca.certFile,
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, logr.Discard(), f) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	token := writeTokens(t, testToken+"\n")
	dir := writeTestBundle(t, t.TempDir(), "harbor-operator", "0.1.0", "alpha", "", nil, nil)
	args := []string{"publish", "--server", f.listen, "--token-file", token, "--ca-file", ca.certFile, "--cert-file", client.certFile, "--key-file", client.keyFile, "--timeout", "20s", dir}
	// The server may not listen yet: retry while the CLI says unreachable.
	var out, errOut string
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		var code int
		code, out, errOut = runCLI(args...)
		switch code {
		case 0:
			return true, nil
		case publish.ExitUnreachable:
			return false, nil
		default:
			return false, fmt.Errorf("exit %d: %s", code, errOut)
		}
	}); err != nil {
		t.Fatalf("publishing over mutual TLS: %v (last stderr: %s)", err, errOut)
	}
	if !strings.HasPrefix(out, "published package=harbor-operator") {
		t.Fatalf("stdout %q", out)
	}
	// Without a client certificate the handshake fails.
	noCert := []string{"publish", "--server", f.listen, "--token-file", token, "--ca-file", ca.certFile, "--timeout", "5s", dir}
	if code, _, errOut := runCLI(noCert...); code == 0 {
		t.Fatalf("published without a client certificate: %s", errOut)
	}
}

// catalogdProcess runs a built catalogd binary as a child process.
type catalogdProcess struct {
	cmd  *exec.Cmd
	addr string
	log  *bytes.Buffer
}

func startProcess(t *testing.T, bin, dataDir, tokens string) *catalogdProcess {
	t.Helper()
	addr := freeAddr(t)
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", "--listen", addr, "--metrics-listen", "", "--data-dir", dataDir, "--token-file", tokens, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &catalogdProcess{cmd: cmd, addr: addr, log: &log}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var last error
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		last = err
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING, nil
	}); err != nil {
		t.Fatalf("catalogd did not become healthy: %v (last check: %v)\n%s", err, last, log.String())
	}
	return p
}

type acked struct{ pkg, version, digest string }

// TestKillDuringPublish kills catalogd with SIGKILL while publishes are in
// flight, one of them halfway through a multi-MB upload, and checks after a
// restart that every acknowledged bundle is there, intact, and that nothing
// half-written is.
func TestKillDuringPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs catalogd")
	}
	bin := filepath.Join(t.TempDir(), "catalogd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	tokens := writeTokens(t, testToken+"\n")
	proc := startProcess(t, bin, dataDir, tokens)
	conn, err := grpc.NewClient(proc.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := catalogv1.NewCatalogServiceClient(conn)
	root := t.TempDir()
	archiveOf := func(dir string) []byte {
		files, err := publish.ReadDir(dir)
		if err != nil {
			t.Error(err)
			return nil
		}
		a, err := publish.Pack(files)
		if err != nil {
			t.Error(err)
		}
		return a
	}

	// A big bundle, sent halfway.
	noise := make([]byte, 3<<20)
	_, _ = rand.Read(noise)
	big := writeTestBundle(t, root, "big-operator", "1.0.0", "stable", "", nil, map[string]string{
		"blob.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob\ndata:\n  blob: " + base64.StdEncoding.EncodeToString(noise) + "\n",
	})
	bigArchive := archiveOf(big)
	ctx, cancel := context.WithCancel(publish.WithToken(context.Background(), testToken))
	defer cancel()
	bigStream, err := client.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := bigStream.Send(&catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Header{Header: &catalogv1.PublishHeader{
		Size: int64(len(bigArchive)), Sha256: publish.SHA256(bigArchive)}}}); err != nil {
		t.Fatal(err)
	}
	if err := bigStream.Send(&catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Chunk{Chunk: bigArchive[:publish.ChunkSize]}}); err != nil {
		t.Fatal(err)
	}

	// Small publishes in flight from four workers until the kill.
	var mu sync.Mutex
	var acks []acked
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkg := fmt.Sprintf("kill-%d", w)
			var skips []string
			for i := 0; !stop.Load(); i++ {
				version := fmt.Sprintf("1.%d.0", i)
				dir := writeTestBundle(t, root, pkg, version, "stable", "", skips, nil)
				skips = append(skips, pkg+".v"+version)
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				resp, err := publish.Upload(cctx, client, archiveOf(dir), &catalogv1.PublishHeader{}, nil)
				ccancel()
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acks = append(acks, acked{resp.GetPackage(), resp.GetVersion(), resp.GetDigest()})
				mu.Unlock()
			}
		}()
	}
	acknowledged := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		return acknowledged() >= 20, nil
	}); err != nil {
		t.Fatalf("only %d publishes acknowledged: %v\n%s", acknowledged(), err, proc.log.String())
	}
	if err := proc.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = proc.cmd.Wait()
	stop.Store(true)
	wg.Wait()
	cancel()
	mu.Lock()
	got := append([]acked(nil), acks...)
	mu.Unlock()
	t.Logf("%d publishes acknowledged before the kill", len(got))

	again := startProcess(t, bin, dataDir, tokens)
	conn2, err := grpc.NewClient(again.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	client2 := catalogv1.NewCatalogServiceClient(conn2)
	bg := context.Background()
	for _, a := range got {
		if _, err := client2.GetBundle(bg, &catalogv1.GetBundleRequest{Package: a.pkg, Version: a.version}); err != nil {
			t.Errorf("acknowledged %s %s is lost: %v", a.pkg, a.version, err)
			continue
		}
		// Intact: publishing the same content again is an idempotent success.
		dir := filepath.Join(root, a.pkg, a.version)
		resp, err := publish.Upload(publish.WithToken(bg, testToken), client2, archiveOf(dir), &catalogv1.PublishHeader{}, nil)
		if err != nil || !resp.GetUnchanged() || resp.GetDigest() != a.digest {
			t.Errorf("%s %s after restart: %v, %v", a.pkg, a.version, resp, err)
		}
	}
	if _, err := client2.GetPackage(bg, &catalogv1.GetPackageRequest{Name: "big-operator"}); err == nil {
		t.Error("the half-sent bundle is served")
	}
	info, err := client2.GetCatalogInfo(bg, &catalogv1.GetCatalogInfoRequest{IncludeProblems: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.GetProblems() {
		if p.GetSeverity() == "error" {
			t.Errorf("problem after restart: %s: %s: %s", p.GetPath(), p.GetField(), p.GetReason())
		}
	}
	// The big bundle can be published in full now.
	resp, err := publish.Upload(publish.WithToken(bg, testToken), client2, bigArchive, &catalogv1.PublishHeader{}, nil)
	if err != nil || resp.GetPackage() != "big-operator" || resp.GetUnchanged() {
		t.Fatalf("big bundle: %v, %v", resp, err)
	}
	if err := again.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = again.cmd.Wait()
}
