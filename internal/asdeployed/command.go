package asdeployed

import (
	"errors"
	"fmt"
	"path"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Where Ferry's manifests (config/default, the Helm chart) deploy it. The
// end-to-end tests and make deploy run these Deployments' containers as
// local processes.
const (
	// Namespace is Ferry's namespace.
	Namespace = "ferry-system"
	// InstallerDeployment is the installer's Deployment.
	InstallerDeployment = "ferry-installer"
	// CatalogdDeployment is catalogd's Deployment.
	CatalogdDeployment = "catalogd"
)

// LocalPodIP is what status.podIP and status.hostIP read as for a process
// on this machine.
const LocalPodIP = "127.0.0.1"

// Command is how a Deployment's container runs, for a local process.
type Command struct {
	// Namespace and Deployment name the Deployment; Container its container.
	Namespace, Deployment, Container string
	// Entrypoint is the container's command[0] when it sets one; empty when
	// the image's entrypoint (the binary) runs.
	Entrypoint string
	// Args are the rest of the container's command followed by its args,
	// with $(VAR) references expanded and WithFlag rewrites applied.
	Args []string
	// Env is the container's environment as NAME=value, in order.
	Env []string
	// ServiceAccount is the pod's serviceAccountName ("default" when unset).
	ServiceAccount string
	// APIAccess is false when the pod mounts no service account token.
	APIAccess bool
	// Rewritten says which flags WithFlag and MountVolumes changed,
	// "--flag: old -> new".
	Rewritten []string
	// Mounts are the container's volumeMounts as local paths, set by
	// MountVolumes.
	Mounts []Mount

	mounts  []corev1.VolumeMount
	volumes []corev1.Volume
}

type commandOptions struct {
	container string
	flags     []flagRewrite
}

type flagRewrite struct{ name, value string }

// CommandOption configures Command.
type CommandOption func(*commandOptions)

// WithContainer picks the container by name (default: the only one).
func WithContainer(name string) CommandOption {
	return func(o *commandOptions) { o.container = name }
}

// WithFlag replaces the value of a flag the container already passes, as
// --name=value or --name value. Command fails when the flag is absent:
// a rewrite never adds behaviour the Deployment does not have. Meant for
// listen addresses, which must move to free ports on 127.0.0.1 when the
// process runs on a shared machine.
func WithFlag(name, value string) CommandOption {
	return func(o *commandOptions) { o.flags = append(o.flags, flagRewrite{name, value}) }
}

// Command returns how the Deployment namespace/name runs its container.
func (m *Manifests) Command(namespace, name string, opts ...CommandOption) (*Command, error) {
	var o commandOptions
	for _, opt := range opts {
		opt(&o)
	}
	u, err := m.Find("apps", "Deployment", namespace, name)
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		return nil, fmt.Errorf("the Deployment %s/%s: %w", namespace, name, err)
	}
	pod := d.Spec.Template.Spec
	c, err := pickContainer(pod.Containers, o.container)
	if err != nil {
		return nil, fmt.Errorf("the Deployment %s/%s: %w", namespace, name, err)
	}
	where := fmt.Sprintf("Deployment %s/%s container %s", namespace, name, c.Name)
	if len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("%s: envFrom is not supported for a local process", where)
	}
	if len(c.VolumeDevices) > 0 {
		return nil, fmt.Errorf("%s: volumeDevices are not supported for a local process", where)
	}
	sa := pod.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	cmd := &Command{
		Namespace: namespace, Deployment: name, Container: c.Name,
		ServiceAccount: sa,
		APIAccess:      pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken,
		mounts:         c.VolumeMounts,
		volumes:        pod.Volumes,
	}
	downward := map[string]string{
		"metadata.namespace":      namespace,
		"metadata.name":           name + "-local",
		"spec.serviceAccountName": sa,
		"spec.nodeName":           "localhost",
		"status.podIP":            LocalPodIP,
		"status.podIPs":           LocalPodIP,
		"status.hostIP":           LocalPodIP,
		"status.hostIPs":          LocalPodIP,
	}
	vars := map[string]string{}
	for i, e := range c.Env {
		var value string
		switch {
		case e.ValueFrom == nil:
			value = expand(e.Value, vars)
		case e.ValueFrom.FieldRef != nil:
			v, ok := downward[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				return nil, fmt.Errorf("%s: env[%d] %s: fieldRef %s is not supported for a local process", where, i, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			value = v
		default:
			return nil, fmt.Errorf("%s: env[%d] %s: only value and fieldRef are supported for a local process", where, i, e.Name)
		}
		vars[e.Name] = value
		cmd.Env = append(cmd.Env, e.Name+"="+value)
	}
	var args []string
	if len(c.Command) > 0 {
		cmd.Entrypoint = expand(c.Command[0], vars)
		for _, a := range c.Command[1:] {
			args = append(args, expand(a, vars))
		}
	}
	for _, a := range c.Args {
		args = append(args, expand(a, vars))
	}
	var errs []error
	for _, f := range o.flags {
		old, err := setFlag(args, f.name, f.value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		cmd.Rewritten = append(cmd.Rewritten, fmt.Sprintf("%s: %s -> %s", f.name, old, f.value))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cmd.Args = args
	return cmd, nil
}

// Binary returns the program to run: bin, after checking that a command the
// container sets names the same program (by base name).
func (c *Command) Binary(bin string) (string, error) {
	if c.Entrypoint != "" && path.Base(c.Entrypoint) != path.Base(bin) {
		return "", fmt.Errorf("the Deployment %s/%s container %s runs %s, not %s", c.Namespace, c.Deployment, c.Container, c.Entrypoint, bin)
	}
	return bin, nil
}

func pickContainer(cs []corev1.Container, name string) (*corev1.Container, error) {
	if name == "" {
		if len(cs) != 1 {
			return nil, fmt.Errorf("%d containers; name the one to run", len(cs))
		}
		return &cs[0], nil
	}
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i], nil
		}
	}
	return nil, fmt.Errorf("no container %q", name)
}

// setFlag replaces the value of the flag name in args and returns the old one.
func setFlag(args []string, name, value string) (string, error) {
	if !strings.HasPrefix(name, "-") {
		return "", fmt.Errorf("flag %q does not start with '-'", name)
	}
	found := -1
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == name || strings.HasPrefix(a, name+"=") {
			if found >= 0 {
				return "", fmt.Errorf("flag %s is passed more than once", name)
			}
			found = i
		}
	}
	switch {
	case found < 0:
		return "", fmt.Errorf("flag %s is not passed, so it cannot be rewritten", name)
	case args[found] != name:
		old := strings.TrimPrefix(args[found], name+"=")
		args[found] = name + "=" + value
		return old, nil
	case found+1 < len(args) && !strings.HasPrefix(args[found+1], "-"):
		old := args[found+1]
		args[found+1] = value
		return old, nil
	default:
		return "", fmt.Errorf("flag %s has no value to rewrite", name)
	}
}

// expand replaces $(VAR) with the value of VAR as the kubelet does: $$ is
// a literal $, and a reference to an undefined variable is left as it is.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
