package testbin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// VersionsFile is the path of the versions file relative to the module root.
const VersionsFile = "hack/testbin/versions.env"

// BuildCommand is the command that builds the binaries.
const BuildCommand = "make testbin"

// Binary names inside the binaries folder.
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	Kwok                  = "kwok"
)

// All lists every binary hack/testbin.sh builds.
var All = []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler, Kwok}

// Versions are the pinned versions of the test bed binaries.
type Versions struct {
	Kubernetes        string // K8S_VERSION, e.g. v1.33.13
	KubernetesStaging string // K8S_STAGING_VERSION, e.g. v0.33.13
	Etcd              string // ETCD_VERSION
	Kwok              string // KWOK_VERSION
}

// DirName is the name of the binaries folder for these versions.
func (v Versions) DirName() string {
	return fmt.Sprintf("k8s-%s-etcd-%s-kwok-%s", v.Kubernetes, v.Etcd, v.Kwok)
}

// ParseVersions parses the KEY=VALUE lines of a versions file. Blank lines and
// lines starting with # are ignored.
func ParseVersions(content string) (Versions, error) {
	var v Versions
	fields := map[string]*string{
		"K8S_VERSION":         &v.Kubernetes,
		"K8S_STAGING_VERSION": &v.KubernetesStaging,
		"ETCD_VERSION":        &v.Etcd,
		"KWOK_VERSION":        &v.Kwok,
	}
	sc := bufio.NewScanner(strings.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return Versions{}, fmt.Errorf("line %d: expected KEY=VALUE, got %q", n, line)
		}
		if dst, known := fields[strings.TrimSpace(key)]; known {
			*dst = strings.Trim(strings.TrimSpace(value), `"'`)
		}
	}
	for key, dst := range fields {
		if *dst == "" {
			return Versions{}, fmt.Errorf("%s is missing", key)
		}
	}
	return v, nil
}

// ModuleRoot returns the root of the ferry module, found by walking up from
// the working directory to the folder that holds the versions file.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, VersionsFile)); err == nil {
			return dir, nil
		}
		if parent := filepath.Dir(dir); parent == dir {
			return "", fmt.Errorf("no %s in %s or any parent folder", VersionsFile, wd)
		}
	}
}

// LoadVersions reads the versions file of the module containing the working
// directory.
func LoadVersions() (Versions, error) {
	root, err := ModuleRoot()
	if err != nil {
		return Versions{}, err
	}
	path := filepath.Join(root, VersionsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Versions{}, err
	}
	v, err := ParseVersions(string(b))
	if err != nil {
		return Versions{}, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// CacheDir is ${FERRY_CACHE:-$HOME/.cache/ferry}.
func CacheDir() (string, error) {
	if dir := os.Getenv("FERRY_CACHE"); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("FERRY_CACHE is unset and the home folder is unknown: %w", err)
	}
	return filepath.Join(home, ".cache", "ferry"), nil
}

// Dir returns the binaries folder for the pinned versions. It does not check
// that the folder exists; see Check.
func Dir() (string, error) {
	v, err := LoadVersions()
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "testbin", v.DirName()), nil
}

// ErrMissing is wrapped by Check's error when binaries are absent.
var ErrMissing = errors.New("test bed binaries missing")

// Check reports whether dir holds the named binaries (all of them when names
// is empty) as executable files. Its error names the missing ones and the
// command that builds them.
func Check(dir string, names ...string) error {
	if len(names) == 0 {
		names = All
	}
	var missing []string
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found in %s; run `%s` from the repository root first (a cold build takes ~15 minutes)",
			ErrMissing, strings.Join(missing, ", "), dir, BuildCommand)
	}
	return nil
}
