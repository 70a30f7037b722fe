package asdeployed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// objects is a VolumeSource backed by maps, keyed by namespace/name.
type objects struct {
	secrets, configMaps map[string]map[string][]byte
	claims              []string
	err                 error
}

func (o objects) Secret(_ context.Context, ns, name string) (map[string][]byte, bool, error) {
	d, ok := o.secrets[ns+"/"+name]
	return d, ok, o.err
}

func (o objects) ConfigMap(_ context.Context, ns, name string) (map[string][]byte, bool, error) {
	d, ok := o.configMaps[ns+"/"+name]
	return d, ok, o.err
}

func (o objects) Claim(_ context.Context, ns, name string) (bool, error) {
	return slices.Contains(o.claims, ns+"/"+name), o.err
}

// deployment is a Deployment of catalogd in ferry-system with the
// container's args and volumeMounts and the pod's volumes (YAML flow lists).
func deployment(args, mounts, volumes string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: catalogd, namespace: ferry-system}
spec:
  template:
    spec:
      automountServiceAccountToken: false
      containers:
      - name: catalogd
        args: ` + args + `
        volumeMounts: ` + mounts + `
      volumes: ` + volumes + "\n"
}

const publishingArgs = `[serve, --data-dir=/var/lib/catalogd, --token-file, /etc/catalogd/tokens/tokens,
          --tls-cert-file=/etc/catalogd/tls/tls.crt, --tls-key-file=/etc/catalogd/tls/tls.key, --catalog=/etc/catalogd-other, --log-format=json]`

const publishingMounts = `[{name: data, mountPath: /var/lib/catalogd}, {name: tokens, mountPath: /etc/catalogd/tokens, readOnly: true},
          {name: tls, mountPath: /etc/catalogd/tls/}]`

const publishingVolumes = `[{name: data, persistentVolumeClaim: {claimName: catalogd-data}},
        {name: tokens, secret: {secretName: catalogd-publish-tokens, defaultMode: 0440, items: [{key: tokens, path: tokens}]}},
        {name: tls, secret: {secretName: catalogd-tls, items: [{key: tls.crt, path: tls.crt}, {key: tls.key, path: tls.key, mode: 0400}]}}]`

func publishingObjects() objects {
	return objects{
		secrets: map[string]map[string][]byte{
			"ferry-system/catalogd-publish-tokens": {"tokens": []byte("t0ken pkg\n"), "other": []byte("x")},
			"ferry-system/catalogd-tls":            {"tls.crt": []byte("CERT"), "tls.key": []byte("KEY"), "ca.crt": []byte("CA")},
		},
		configMaps: map[string]map[string][]byte{
			"ferry-system/settings": {"a.yaml": []byte("a: 1"), "b.yaml": []byte("b: 2")},
		},
		claims: []string{"ferry-system/catalogd-data"},
	}
}

func command(t *testing.T, doc string) *Command {
	t.Helper()
	m, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := m.Command("ferry-system", "catalogd")
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

type wantFile struct {
	path, content string
	mode          os.FileMode
}

func TestMountVolumes(t *testing.T) {
	tests := []struct {
		name                  string
		args, mounts, volumes string
		wantArgs              []string // with DIR for the volumes folder
		wantRewritten         []string
		wantFiles             []wantFile // relative to DIR
		wantDirs, wantAbsent  []string
	}{
		{
			name: "publishing", args: publishingArgs, mounts: publishingMounts, volumes: publishingVolumes,
			wantArgs: []string{"serve", "--data-dir=DIR/pvc/catalogd-data", "--token-file", "DIR/secret/tokens/tokens",
				"--tls-cert-file=DIR/secret/tls/tls.crt", "--tls-key-file=DIR/secret/tls/tls.key", "--catalog=/etc/catalogd-other", "--log-format=json"},
			wantRewritten: []string{
				"--data-dir: /var/lib/catalogd -> DIR/pvc/catalogd-data (volume data)",
				"args[3]: /etc/catalogd/tokens/tokens -> DIR/secret/tokens/tokens (volume tokens)",
				"--tls-cert-file: /etc/catalogd/tls/tls.crt -> DIR/secret/tls/tls.crt (volume tls)",
				"--tls-key-file: /etc/catalogd/tls/tls.key -> DIR/secret/tls/tls.key (volume tls)",
			},
			wantFiles: []wantFile{
				{"secret/tokens/tokens", "t0ken pkg\n", 0o440},
				{"secret/tls/tls.crt", "CERT", DefaultSecretMode},
				{"secret/tls/tls.key", "KEY", 0o400},
			},
			wantDirs:   []string{"pvc/catalogd-data"},
			wantAbsent: []string{"secret/tokens/other", "secret/tls/ca.crt"},
		},
		{
			name:    "all keys, subPath, configMap, emptyDir",
			args:    `[--ca=/etc/ca.crt, --config=/config/a.yaml, --scratch=/tmp/work/x, --nested=/tmp/work/sub/y, /config]`,
			mounts:  `[{name: tls, mountPath: /etc/ca.crt, subPath: ca.crt}, {name: settings, mountPath: /config}, {name: scratch, mountPath: /tmp/work}, {name: scratch, mountPath: /tmp/work/sub, subPath: deep/er}]`,
			volumes: `[{name: tls, secret: {secretName: catalogd-tls}}, {name: settings, configMap: {name: settings, defaultMode: 0444}}, {name: scratch, emptyDir: {}}]`,
			wantArgs: []string{"--ca=DIR/secret/tls/ca.crt", "--config=DIR/configmap/settings/a.yaml", "--scratch=DIR/emptydir/scratch/x",
				"--nested=DIR/emptydir/scratch/deep/er/y", "DIR/configmap/settings"},
			wantFiles: []wantFile{
				{"secret/tls/ca.crt", "CA", DefaultSecretMode},
				{"secret/tls/tls.key", "KEY", DefaultSecretMode},
				{"configmap/settings/a.yaml", "a: 1", 0o444},
				{"configmap/settings/b.yaml", "b: 2", 0o444},
			},
			wantDirs: []string{"emptydir/scratch/deep/er"},
		},
		{
			name:     "optional objects that are missing",
			args:     `[--a=/a/x, --b=/b/y]`,
			mounts:   `[{name: a, mountPath: /a}, {name: b, mountPath: /b}]`,
			volumes:  `[{name: a, secret: {secretName: nope, optional: true}}, {name: b, configMap: {name: settings, optional: true, items: [{key: missing, path: m}, {key: a.yaml, path: dir/a}]}}]`,
			wantArgs: []string{"--a=DIR/secret/a/x", "--b=DIR/configmap/b/y"},
			wantFiles: []wantFile{
				{"configmap/b/dir/a", "a: 1", DefaultConfigMapMode},
			},
			wantDirs:   []string{"secret/a"},
			wantAbsent: []string{"configmap/b/m"},
		},
		{
			name:     "a path that only shares a prefix is left alone",
			args:     `[--x=/dataset/a, --y=/data]`,
			mounts:   `[{name: d, mountPath: /data}]`,
			volumes:  `[{name: d, emptyDir: {}}]`,
			wantArgs: []string{"--x=/dataset/a", "--y=DIR/emptydir/d"},
		},
		{
			name: "no volumes", args: `[serve]`, mounts: `[]`, volumes: `[]`,
			wantArgs: []string{"serve"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := command(t, deployment(tt.args, tt.mounts, tt.volumes))
			if err := cmd.MountVolumes(context.Background(), publishingObjects(), dir); err != nil {
				t.Fatal(err)
			}
			sub := func(s string) string { return strings.ReplaceAll(s, "DIR", dir) }
			var wantArgs []string
			for _, a := range tt.wantArgs {
				wantArgs = append(wantArgs, sub(a))
			}
			if !slices.Equal(cmd.Args, wantArgs) {
				t.Errorf("args = %q\nwant   %q", cmd.Args, wantArgs)
			}
			if tt.wantRewritten != nil {
				var want []string
				for _, r := range tt.wantRewritten {
					want = append(want, sub(r))
				}
				if !slices.Equal(cmd.Rewritten, want) {
					t.Errorf("rewritten = %q\nwant        %q", cmd.Rewritten, want)
				}
			}
			for _, f := range tt.wantFiles {
				p := filepath.Join(dir, f.path)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Errorf("reading %s: %v", f.path, err)
					continue
				}
				if string(data) != f.content {
					t.Errorf("%s = %q, want %q", f.path, data, f.content)
				}
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != f.mode {
					t.Errorf("%s: mode %v (%v), want %v", f.path, fi.Mode().Perm(), err, f.mode)
				}
			}
			for _, d := range tt.wantDirs {
				if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
					t.Errorf("%s is not a folder: %v", d, err)
				}
			}
			for _, a := range tt.wantAbsent {
				if _, err := os.Stat(filepath.Join(dir, a)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists (%v); the volume's items leave it out", a, err)
				}
			}
			if err := cmd.MountVolumes(context.Background(), publishingObjects(), dir); err == nil {
				t.Error("mounting twice succeeded: the args would be rewritten twice")
			}
		})
	}
}

// TestMountVolumesAgain: a second run replaces what a Secret volume
// held (read-only files included) and keeps what the claim holds, but an
// emptyDir starts empty.
func TestMountVolumesAgain(t *testing.T) {
	dir := t.TempDir()
	doc := deployment(publishingArgs, publishingMounts, publishingVolumes)
	doc = strings.Replace(doc, "{name: tls, mountPath: /etc/catalogd/tls/}]", "{name: tls, mountPath: /etc/catalogd/tls/}, {name: scratch, mountPath: /scratch}]", 1)
	doc = strings.Replace(doc, "volumes: [", "volumes: [{name: scratch, emptyDir: {}}, ", 1)
	src := publishingObjects()
	if err := command(t, doc).MountVolumes(context.Background(), src, dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"pvc/catalogd-data/published", "emptydir/scratch/left"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src.secrets["ferry-system/catalogd-publish-tokens"]["tokens"] = []byte("rotated pkg\n")
	if err := command(t, doc).MountVolumes(context.Background(), src, dir); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "secret/tokens/tokens")); err != nil || string(data) != "rotated pkg\n" {
		t.Errorf("the token file after the Secret changed: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pvc/catalogd-data/published")); err != nil {
		t.Errorf("the claim lost its data: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "emptydir/scratch/left")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the emptyDir kept a file of the last run: %v", err)
	}
}

func TestMountVolumesErrors(t *testing.T) {
	at := "Deployment ferry-system/catalogd container catalogd: volumeMounts[0] (volume v at /v): "
	tests := []struct {
		name, mount, volume string
		src                 *objects
		want                string
	}{
		{"projected", `{name: v, mountPath: /v}`, `{name: v, projected: {sources: []}}`, nil,
			at + "a projected volume is not supported for a local process (only secret, configMap, emptyDir and persistentVolumeClaim are)"},
		{"downwardAPI", `{name: v, mountPath: /v}`, `{name: v, downwardAPI: {items: []}}`, nil, at + "a downwardAPI volume is not supported"},
		{"hostPath", `{name: v, mountPath: /v}`, `{name: v, hostPath: {path: /etc}}`, nil, at + "a hostPath volume is not supported"},
		{"no such volume", `{name: v, mountPath: /v}`, `{name: w, emptyDir: {}}`, nil, at + "the pod has no such volume"},
		{"missing secret", `{name: v, mountPath: /v}`, `{name: v, secret: {secretName: nope}}`, nil, at + "the Secret ferry-system/nope does not exist"},
		{"missing configMap", `{name: v, mountPath: /v}`, `{name: v, configMap: {name: nope}}`, nil, at + "the ConfigMap ferry-system/nope does not exist"},
		{"missing key", `{name: v, mountPath: /v}`, `{name: v, secret: {secretName: catalogd-tls, items: [{key: tls.crt, path: a}, {key: nope, path: b}]}}`, nil,
			at + `items[1]: the Secret ferry-system/catalogd-tls has no key "nope"`},
		{"item path escapes", `{name: v, mountPath: /v}`, `{name: v, secret: {secretName: catalogd-tls, items: [{key: tls.crt, path: ../x}]}}`, nil,
			at + `items[0].path: "../x" contains '..'`},
		{"absolute item path", `{name: v, mountPath: /v}`, `{name: v, configMap: {name: settings, items: [{key: a.yaml, path: /x}]}}`, nil,
			at + `items[0].path: "/x" is absolute`},
		{"bad mode", `{name: v, mountPath: /v}`, `{name: v, secret: {secretName: catalogd-tls, defaultMode: 4095}}`, nil,
			at + "defaultMode: 07777 is not a file mode between 0 and 0777"},
		{"missing claim", `{name: v, mountPath: /v}`, `{name: v, persistentVolumeClaim: {claimName: nope}}`, nil,
			at + "the PersistentVolumeClaim ferry-system/nope does not exist"},
		{"subPath escapes", `{name: v, mountPath: /v, subPath: a/../../b}`, `{name: v, emptyDir: {}}`, nil, at + `subPath: "a/../../b" contains '..'`},
		{"subPath not in secret", `{name: v, mountPath: /v, subPath: nope}`, `{name: v, secret: {secretName: catalogd-tls}}`, nil,
			at + "subPath nope is not in the Secret ferry-system/catalogd-tls"},
		{"subPathExpr", `{name: v, mountPath: /v, subPathExpr: $(POD)}`, `{name: v, emptyDir: {}}`, nil, at + "subPathExpr is not supported"},
		{"volume name escapes", `{name: ../../x, mountPath: /v}`, `{name: ../../x, emptyDir: {}}`, nil, `volume name: "../../x" is not a valid name`},
		{"root mount", `{name: v, mountPath: /}`, `{name: v, emptyDir: {}}`, nil, "volumeMounts[0] (volume v at /): mountPath is not an absolute path below /"},
		{"API error", `{name: v, mountPath: /v}`, `{name: v, secret: {secretName: catalogd-tls}}`, &objects{err: errors.New("connection refused")},
			at + "reading the Secret ferry-system/catalogd-tls: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := command(t, deployment(`[serve]`, "["+tt.mount+"]", "["+tt.volume+"]"))
			src := publishingObjects()
			if tt.src != nil {
				src = *tt.src
			}
			err := cmd.MountVolumes(context.Background(), src, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("MountVolumes error = %v\nwant it to contain %q", err, tt.want)
			}
			if cmd.Mounts != nil {
				t.Errorf("Mounts = %+v after an error", cmd.Mounts)
			}
		})
	}
}
