package testregistry

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/ferrydev/ferry/internal/freeport"
	"github.com/ferrydev/ferry/internal/testbin"
)

// Start builds hack/registry and runs it on a free loopback port until the
// test ends; it returns host:port.
func Start(t testing.TB) string {
	t.Helper()
	root, err := testbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "registry")
	build := exec.Command("go", "build", "-o", bin, "./hack/registry")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building hack/registry: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--quiet")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("registry did not say where it listens: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("registry said %q", line)
	}
	return addr
}

// Faulty is an in-memory registry that misbehaves on demand.
type Faulty struct {
	// Addr is host:port on 127.0.0.1.
	Addr string

	srv *httptest.Server
	mu  sync.Mutex
	// corrupt flips a byte of every blob served.
	corrupt bool
	// hideManifests answers 404 MANIFEST_UNKNOWN for manifests by digest.
	hideManifests bool
	// user and password, when set, are required (HTTP basic auth).
	user, password string
	// onBlob runs before the first blob is served, once.
	onBlob func()
}

// NewFaulty starts a faulty registry until the test ends.
func NewFaulty(t testing.TB) *Faulty {
	t.Helper()
	f := &Faulty{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(inner, w, r) }))
	t.Cleanup(f.srv.Close)
	f.Addr = strings.TrimPrefix(f.srv.URL, "http://")
	return f
}

// CorruptBlobs makes every blob served have one byte changed.
func (f *Faulty) CorruptBlobs(on bool) { f.set(func() { f.corrupt = on }) }

// HideManifests answers 404 for manifests requested by digest (a tag still
// resolves: the manifest it names is missing).
func (f *Faulty) HideManifests(on bool) { f.set(func() { f.hideManifests = on }) }

// RequireAuth asks for these credentials; empty user turns it off.
func (f *Faulty) RequireAuth(user, password string) {
	f.set(func() { f.user, f.password = user, password })
}

// OnFirstBlob runs fn once, before the next blob is served.
func (f *Faulty) OnFirstBlob(fn func()) { f.set(func() { f.onBlob = fn }) }

// Stop makes the registry unreachable: connections are refused from now on.
func (f *Faulty) Stop() { f.srv.Close() }

func (f *Faulty) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *Faulty) serve(inner http.Handler, w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	corrupt, hide, user, password := f.corrupt, f.hideManifests, f.user, f.password
	var onBlob func()
	isBlob := strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Method == http.MethodGet
	if isBlob {
		onBlob, f.onBlob = f.onBlob, nil
	}
	f.mu.Unlock()
	if user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="faulty"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
	}
	if hide && strings.Contains(r.URL.Path, "/manifests/sha256:") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
		return
	}
	if onBlob != nil {
		onBlob()
	}
	if isBlob && corrupt {
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) > 0 {
			body = bytes.Clone(body)
			body[len(body)/2] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
		return
	}
	inner.ServeHTTP(w, r)
}

// NewTLS serves an in-memory registry over HTTPS with a certificate of
// its own until the test ends; it returns host:port and the path of a PEM
// file holding the certificate to trust.
func NewTLS(t testing.TB) (addr, caFile string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	// Handshakes the test makes fail on purpose are not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.crt")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(block), 0o644); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "https://"), caFile
}

// FreeAddr returns a loopback address nothing listens on, never one handed
// out before in this process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
