package asdeployed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Modes of the files of a Secret or ConfigMap volume that sets no
// defaultMode. The kubelet's default is 0644 for both; a Secret's files are
// kept to their owner here, since the deploy folder is on a shared machine.
const (
	DefaultSecretMode    os.FileMode = 0o600
	DefaultConfigMapMode os.FileMode = 0o644
)

// maxVolumeFiles bounds the files one Secret or ConfigMap volume writes (an
// object holds at most 1 MiB, so the bytes are bounded by the API server).
const maxVolumeFiles = 1024

// VolumeSource reads what Secret, ConfigMap and PersistentVolumeClaim
// volumes refer to. found is false, with a nil error, when the object does
// not exist.
type VolumeSource interface {
	Secret(ctx context.Context, namespace, name string) (data map[string][]byte, found bool, err error)
	ConfigMap(ctx context.Context, namespace, name string) (data map[string][]byte, found bool, err error)
	Claim(ctx context.Context, namespace, name string) (found bool, err error)
}

// ClusterSource reads volumes' objects from the cluster with cfg's
// credentials: those of the one deploying (the process itself may have no
// API access, as catalogd has none).
func ClusterSource(cfg *rest.Config) (VolumeSource, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return clusterSource{cs}, nil
}

type clusterSource struct{ cs kubernetes.Interface }

func (s clusterSource) Secret(ctx context.Context, namespace, name string) (map[string][]byte, bool, error) {
	o, err := s.cs.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return o.Data, true, nil
}

func (s clusterSource) ConfigMap(ctx context.Context, namespace, name string) (map[string][]byte, bool, error) {
	o, err := s.cs.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	data := make(map[string][]byte, len(o.Data)+len(o.BinaryData))
	for k, v := range o.Data {
		data[k] = []byte(v)
	}
	for k, v := range o.BinaryData {
		data[k] = v
	}
	return data, true, nil
}

func (s clusterSource) Claim(ctx context.Context, namespace, name string) (bool, error) {
	_, err := s.cs.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Mount is a volumeMount of the container, made a local path.
type Mount struct {
	// Volume is the volume's name; Kind its type (Secret, ConfigMap,
	// EmptyDir, PersistentVolumeClaim) and Object the object it comes from
	// ("namespace/name"; empty for an emptyDir).
	Volume, Kind, Object string
	// MountPath is where the container sees it; Local where the process does.
	MountPath, Local string
}

// MountVolumes makes the container's volumeMounts local paths under dir and
// rewrites every argument that names a mounted path:
//
//   - a Secret or ConfigMap volume is read from src and written to
//     dir/secret/VOLUME or dir/configmap/VOLUME, afresh each time, with its
//     items (key → path), the items' modes and the volume's defaultMode
//     (DefaultSecretMode, DefaultConfigMapMode when unset); a missing object
//     or key is an error unless the volume is optional;
//   - an emptyDir is the empty folder dir/emptydir/VOLUME;
//   - a persistentVolumeClaim is dir/pvc/CLAIM, kept from one run to the
//     next as the claim keeps its data; the claim must exist;
//   - any other volume type, and subPathExpr, is an error naming the volume.
//
// A subPath mounts that path of the volume. An argument is rewritten when
// it, or the value after the '=' of a -flag=value, is a mount path or lies
// below one (the longest mount path wins); each rewrite is reported in
// Rewritten, each mount in Mounts.
func (c *Command) MountVolumes(ctx context.Context, src VolumeSource, dir string) error {
	if c.Mounts != nil {
		return errors.New("the volumes are mounted already")
	}
	if len(c.mounts) == 0 {
		c.Mounts = []Mount{}
		return nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("Deployment %s/%s container %s", c.Namespace, c.Deployment, c.Container)
	volumes := map[string]Mount{}
	var mounts []Mount
	var errs []error
	for i, vm := range c.mounts {
		at := fmt.Sprintf("%s: volumeMounts[%d] (volume %s at %s)", where, i, vm.Name, vm.MountPath)
		m, err := c.mountOne(ctx, src, dir, vm, volumes)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		mounts = append(mounts, m)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.Mounts = mounts
	c.Rewritten = append(c.Rewritten, rewriteMounted(c.Args, mounts)...)
	return nil
}

func (c *Command) mountOne(ctx context.Context, src VolumeSource, dir string, vm corev1.VolumeMount, volumes map[string]Mount) (Mount, error) {
	if vm.SubPathExpr != "" {
		return Mount{}, errors.New("subPathExpr is not supported for a local process")
	}
	if !path.IsAbs(vm.MountPath) || path.Clean(vm.MountPath) == "/" {
		return Mount{}, errors.New("mountPath is not an absolute path below /")
	}
	if vm.SubPath != "" {
		if err := checkRelative(vm.SubPath); err != nil {
			return Mount{}, fmt.Errorf("subPath: %w", err)
		}
	}
	vol, ok := c.volume(vm.Name)
	if !ok {
		return Mount{}, errors.New("the pod has no such volume")
	}
	m, ok := volumes[vm.Name]
	if !ok {
		var err error
		if m, err = c.materialize(ctx, src, dir, vol); err != nil {
			return Mount{}, err
		}
		volumes[vm.Name] = m
	}
	m.MountPath = path.Clean(vm.MountPath)
	if vm.SubPath != "" {
		m.Local = filepath.Join(m.Local, filepath.FromSlash(vm.SubPath))
		switch m.Kind {
		case "Secret", "ConfigMap":
			if _, err := os.Stat(m.Local); err != nil {
				return Mount{}, fmt.Errorf("subPath %s is not in the %s %s", vm.SubPath, m.Kind, m.Object)
			}
		default:
			// The kubelet creates a missing subPath of a writable volume.
			if err := os.MkdirAll(m.Local, 0o700); err != nil {
				return Mount{}, err
			}
		}
	}
	return m, nil
}

func (c *Command) volume(name string) (corev1.Volume, bool) {
	for _, v := range c.volumes {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.Volume{}, false
}

// materialize makes the volume a local folder and returns it as a Mount
// without MountPath.
func (c *Command) materialize(ctx context.Context, src VolumeSource, dir string, v corev1.Volume) (Mount, error) {
	m := Mount{Volume: v.Name}
	// The Deployment is never applied, so no API server validated it: a
	// name that is not one path element must not reach RemoveAll.
	if err := checkName(v.Name); err != nil {
		return m, fmt.Errorf("volume name: %w", err)
	}
	switch {
	case v.Secret != nil:
		m.Kind, m.Object = "Secret", c.Namespace+"/"+v.Secret.SecretName
		m.Local = filepath.Join(dir, "secret", v.Name)
		data, found, err := src.Secret(ctx, c.Namespace, v.Secret.SecretName)
		if err != nil {
			return m, fmt.Errorf("reading the Secret %s: %w", m.Object, err)
		}
		return m, writeVolume(m, data, found, optional(v.Secret.Optional), v.Secret.Items, v.Secret.DefaultMode, DefaultSecretMode)
	case v.ConfigMap != nil:
		m.Kind, m.Object = "ConfigMap", c.Namespace+"/"+v.ConfigMap.Name
		m.Local = filepath.Join(dir, "configmap", v.Name)
		data, found, err := src.ConfigMap(ctx, c.Namespace, v.ConfigMap.Name)
		if err != nil {
			return m, fmt.Errorf("reading the ConfigMap %s: %w", m.Object, err)
		}
		return m, writeVolume(m, data, found, optional(v.ConfigMap.Optional), v.ConfigMap.Items, v.ConfigMap.DefaultMode, DefaultConfigMapMode)
	case v.EmptyDir != nil:
		m.Kind = "EmptyDir"
		m.Local = filepath.Join(dir, "emptydir", v.Name)
		if err := os.RemoveAll(m.Local); err != nil {
			return m, err
		}
		return m, os.MkdirAll(m.Local, 0o700)
	case v.PersistentVolumeClaim != nil:
		claim := v.PersistentVolumeClaim.ClaimName
		if err := checkName(claim); err != nil {
			return m, fmt.Errorf("claimName: %w", err)
		}
		m.Kind, m.Object = "PersistentVolumeClaim", c.Namespace+"/"+claim
		m.Local = filepath.Join(dir, "pvc", claim)
		found, err := src.Claim(ctx, c.Namespace, claim)
		if err != nil {
			return m, fmt.Errorf("reading the PersistentVolumeClaim %s: %w", m.Object, err)
		}
		if !found {
			return m, fmt.Errorf("the PersistentVolumeClaim %s does not exist", m.Object)
		}
		return m, os.MkdirAll(m.Local, 0o700)
	default:
		return m, fmt.Errorf("a %s volume is not supported for a local process (only secret, configMap, emptyDir and persistentVolumeClaim are)", volumeType(v))
	}
}

func optional(b *bool) bool { return b != nil && *b }

// writeVolume writes a Secret's or ConfigMap's data to m.Local, replacing
// what an earlier run wrote there.
func writeVolume(m Mount, data map[string][]byte, found, optional bool, items []corev1.KeyToPath, defaultMode *int32, fallback os.FileMode) error {
	mode := fallback
	if defaultMode != nil {
		var err error
		if mode, err = fileMode(*defaultMode); err != nil {
			return fmt.Errorf("defaultMode: %w", err)
		}
	}
	if !found && !optional {
		return fmt.Errorf("the %s %s does not exist", m.Kind, m.Object)
	}
	type file struct {
		path string
		data []byte
		mode os.FileMode
	}
	var files []file
	if len(items) == 0 {
		for k, v := range data {
			if err := checkRelative(k); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			files = append(files, file{k, v, mode})
		}
	}
	for i, it := range items {
		if err := checkRelative(it.Path); err != nil {
			return fmt.Errorf("items[%d].path: %w", i, err)
		}
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("items[%d]: the %s %s has no key %q", i, m.Kind, m.Object, it.Key)
		}
		fm := mode
		if it.Mode != nil {
			var err error
			if fm, err = fileMode(*it.Mode); err != nil {
				return fmt.Errorf("items[%d].mode: %w", i, err)
			}
		}
		files = append(files, file{it.Path, v, fm})
	}
	if len(files) > maxVolumeFiles {
		return fmt.Errorf("%d files, more than %d", len(files), maxVolumeFiles)
	}
	if err := os.RemoveAll(m.Local); err != nil {
		return err
	}
	if err := os.MkdirAll(m.Local, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(m.Local, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return err
		}
		// Chmod, not WriteFile's mode: the umask must not change it.
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func fileMode(m int32) (os.FileMode, error) {
	if m < 0 || m > 0o777 {
		return 0, fmt.Errorf("%#o is not a file mode between 0 and 0777", m)
	}
	return os.FileMode(m), nil
}

// checkRelative accepts a relative slash-separated path that stays below
// the folder it is joined to.
func checkRelative(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case path.IsAbs(p) || strings.HasPrefix(p, `\`):
		return fmt.Errorf("%q is absolute", p)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Errorf("%q contains '..'", p)
	}
	return nil
}

// checkName accepts a name that is one path element.
func checkName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) {
		return fmt.Errorf("%q is not a valid name", n)
	}
	return nil
}

func volumeType(v corev1.Volume) string {
	s := v.VolumeSource
	switch {
	case s.Projected != nil:
		return "projected"
	case s.DownwardAPI != nil:
		return "downwardAPI"
	case s.HostPath != nil:
		return "hostPath"
	case s.CSI != nil:
		return "csi"
	case s.Ephemeral != nil:
		return "ephemeral"
	case s.Image != nil:
		return "image"
	case s.NFS != nil:
		return "nfs"
	default:
		return "volume type that is not secret, configMap, emptyDir or persistentVolumeClaim:"
	}
}

// rewriteMounted replaces mount paths in args with their local paths and
// reports each change as "FLAG: old -> new" (args[i] for an argument that
// is not -flag=value).
func rewriteMounted(args []string, mounts []Mount) []string {
	byLength := slices.Clone(mounts)
	slices.SortStableFunc(byLength, func(a, b Mount) int { return cmp.Compare(len(b.MountPath), len(a.MountPath)) })
	var report []string
	for i, a := range args {
		prefix, value := "", a
		if strings.HasPrefix(a, "-") {
			eq := strings.IndexByte(a, '=')
			if eq < 0 {
				continue
			}
			prefix, value = a[:eq+1], a[eq+1:]
		}
		for _, m := range byLength {
			rest, ok := strings.CutPrefix(value, m.MountPath)
			if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
				continue
			}
			local := m.Local + filepath.FromSlash(rest)
			args[i] = prefix + local
			name := strings.TrimSuffix(prefix, "=")
			if name == "" {
				name = fmt.Sprintf("args[%d]", i)
			}
			report = append(report, fmt.Sprintf("%s: %s -> %s (volume %s)", name, value, local, m.Volume))
			break
		}
	}
	return report
}
