package charts

import (
	"encoding/base64"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	crname "github.com/google/go-containerregistry/pkg/name"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/internal/images"
)

// allOn is the values file with every feature of the chart on.
const allOn = "all-on.yaml"

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		sets  []string
	}{
		{name: "defaults"},
		{name: "everything on", files: []string{allOn}},
		{name: "publishing behind a TLS proxy, existing Secret, no volume", sets: []string{
			"catalogd.publishing.enabled=true", "catalogd.publishing.allowInsecure=true",
			"catalogd.publishing.tokens.existingSecret=ci-tokens", "catalogd.publishing.persistence.enabled=false",
		}},
		{name: "no leader election, no CRDs", sets: []string{"installer.leaderElection.enabled=false", "crds.install=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--namespace", namespace}, valueArgs(tc.files, tc.sets)...)
			out, err := runHelm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// TestRefuses: values that cannot work are refused when rendering, each with
// a message naming the value to change.
func TestRefuses(t *testing.T) {
	publishing := []string{"catalogd.publishing.enabled=true", "catalogd.publishing.tokens.existingSecret=ci-tokens"}
	tls := []string{"catalogd.tls.enabled=true", "catalogd.tls.secretName=catalogd-tls"}
	for _, tc := range []struct {
		name  string
		files []string
		sets  []string
		want  string
	}{
		{"unknown value", nil, []string{"catalogd.tls.enable=true"}, "additional properties 'enable' not allowed"},
		{"log format", nil, []string{"installer.logFormat=yaml"}, "installer/logFormat"},
		{"default ServiceAccount", nil, []string{"installer.defaultServiceAccount=Default"}, "installer/defaultServiceAccount"},
		{"digest", nil, []string{"catalogd.image.digest=latest"}, "catalogd/image/digest"},
		{"port", nil, []string{"catalogd.grpcPort=70000"}, "catalogd/grpcPort"},
		{"catalog name", nil, []string{"catalogd.catalogs[0].name=Community", "catalogd.catalogs[0].volume.emptyDir.medium=Memory"}, "catalogd/catalogs/0/name"},
		{"catalog without volume", nil, []string{"catalogd.catalogs[0].name=community"}, "missing property 'volume'"},
		{"duplicate catalog", nil, []string{
			"catalogd.catalogs[0].name=community", "catalogd.catalogs[0].volume.emptyDir.medium=Memory",
			"catalogd.catalogs[1].name=community", "catalogd.catalogs[1].volume.emptyDir.medium=Memory",
		}, `catalogd.catalogs[1].name: "community" is used by catalogd.catalogs[0] too`},
		{"replicas without leader election", nil, []string{"installer.replicas=2", "installer.leaderElection.enabled=false"}, "installer.replicas is 2 but installer.leaderElection.enabled is false"},
		{"same installer ports", nil, []string{"installer.probePort=8080"}, "installer.metricsPort and installer.probePort are both 8080"},
		{"same catalogd ports", nil, []string{"catalogd.metricsPort=50051"}, "catalogd.grpcPort and catalogd.metricsPort are both 50051"},
		{"publishing without tokens", nil, append([]string{"catalogd.publishing.enabled=true"}, tls...), "no tokens are given"},
		{"publishing with two token sources", nil, append(append([]string{"catalogd.publishing.tokens.inline=abcdefghijklmnop"}, publishing...), tls...), "set existingSecret or inline, not both"},
		{"publishing without TLS", nil, publishing, "catalogd.publishing.enabled is true but catalogd.tls.enabled is false"},
		{"publishing with two replicas", nil, append(append([]string{"catalogd.replicas=2"}, publishing...), tls...), "catalogd.replicas is 2 but catalogd.publishing.enabled is true"},
		{"insecure without publishing", nil, []string{"catalogd.publishing.allowInsecure=true"}, "catalogd.publishing.allowInsecure is true but catalogd.publishing.enabled is false"},
		{"TLS without a Secret", nil, []string{"catalogd.tls.enabled=true"}, "catalogd.tls.secretName is empty"},
		{"client CA from two places", nil, append([]string{"catalogd.tls.clientCA.secretName=a", "catalogd.tls.clientCA.configMapName=b"}, tls...), "set secretName or configMapName, not both"},
		{"TLS Secret with TLS off", nil, []string{"catalogd.tls.secretName=catalogd-tls"}, "catalogd.tls.enabled is false"},
		{"client CA with TLS off", nil, []string{"catalogd.tls.clientCA.configMapName=clients"}, "catalogd.tls.enabled is false"},
		{"PVC without access modes", []string{allOn}, []string{"catalogd.publishing.persistence.accessModes=null"}, "missing property 'accessModes'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelm(t, templateArgs(tc.files, tc.sets)...)
			if err == nil {
				t.Fatalf("rendered, want an error containing %q:\n%.2000s", tc.want, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not contain %q:\n%v", tc.want, err)
			}
		})
	}
}

// kindName identifies a rendered object.
type kindName struct{ kind, name string }

func kindNames(objs []object) []kindName {
	var out []kindName
	for _, o := range objs {
		out = append(out, kindName{o.Kind, o.Metadata.Name})
	}
	return out
}

// TestObjects: the objects each toggle adds, and that every one parses
// strictly into its Go type in the release namespace.
func TestObjects(t *testing.T) {
	base := []kindName{
		{"ServiceAccount", "ferry-installer"}, {"ServiceAccount", "ferry-catalogd"},
		{"ClusterRole", "ferry-installer"}, {"ClusterRoleBinding", "ferry-installer"},
		{"Role", "ferry-installer-leader-election"}, {"RoleBinding", "ferry-installer-leader-election"},
		{"Service", "catalogd"}, {"Service", "ferry-installer-metrics"},
		{"Deployment", "catalogd"}, {"Deployment", "ferry-installer"},
	}
	admission := []kindName{
		{"ValidatingAdmissionPolicy", "ferry-subscription-serviceaccount"}, {"ValidatingAdmissionPolicyBinding", "ferry-subscription-serviceaccount"},
		{"ValidatingAdmissionPolicy", "ferry-catalog-and-revision-writers"}, {"ValidatingAdmissionPolicyBinding", "ferry-catalog-and-revision-writers"},
	}
	base = append(base, admission...)
	crds := []kindName{
		{"CustomResourceDefinition", "catalogsources.operators.ferry.dev"},
		{"CustomResourceDefinition", "revisions.operators.ferry.dev"},
		{"CustomResourceDefinition", "subscriptions.operators.ferry.dev"},
	}
	with := func(extra ...kindName) []kindName { return append(append(slices.Clone(base), crds...), extra...) }
	for _, tc := range []struct {
		name  string
		files []string
		sets  []string
		want  []kindName
	}{
		{"defaults", nil, nil, with()},
		{"no CRDs", nil, []string{"crds.install=false"}, base},
		{"no admission policies", nil, []string{"admission.enabled=false"}, slices.DeleteFunc(with(), func(k kindName) bool { return slices.Contains(admission, k) })},
		{"no leader election", nil, []string{"installer.leaderElection.enabled=false"}, append(slices.DeleteFunc(slices.Clone(base), func(k kindName) bool {
			return k.kind == "Role" || k.kind == "RoleBinding"
		}), crds...)},
		{"everything on", []string{allOn}, nil, with(
			kindName{"Secret", "catalogd-publish-tokens"}, kindName{"PersistentVolumeClaim", "catalogd-data"},
			kindName{"ServiceMonitor", "ferry-installer"}, kindName{"ServiceMonitor", "catalogd"},
		)},
		{"existing Secret and claim", []string{allOn}, []string{
			"catalogd.publishing.tokens.inline=", "catalogd.publishing.tokens.existingSecret=ci-tokens",
			"catalogd.publishing.persistence.existingClaim=published", "metrics.serviceMonitor.enabled=false",
		}, with()},
		{"no persistence", []string{allOn}, []string{"catalogd.publishing.persistence.enabled=false"}, with(
			kindName{"Secret", "catalogd-publish-tokens"},
			kindName{"ServiceMonitor", "ferry-installer"}, kindName{"ServiceMonitor", "catalogd"},
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.files, tc.sets...)
			got := kindNames(objs)
			less := func(a, b kindName) int { return strings.Compare(a.kind+"/"+a.name, b.kind+"/"+b.name) }
			slices.SortFunc(got, less)
			want := slices.SortedFunc(slices.Values(tc.want), less)
			if !slices.Equal(got, want) {
				t.Errorf("objects:\n got %v\nwant %v", got, want)
			}
			for _, o := range objs {
				if out := typed(o.Kind); out != nil {
					decodeStrict(t, o, out)
				}
				clusterScoped := slices.Contains([]string{"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, o.Kind)
				if ns := o.Metadata.Namespace; clusterScoped != (ns == "") || !clusterScoped && ns != namespace {
					t.Errorf("%s: namespace %q", o, ns)
				}
				if o.Metadata.Labels["app.kubernetes.io/part-of"] != "ferry" || o.Metadata.Labels["app.kubernetes.io/instance"] != release {
					t.Errorf("%s: labels %v lack part-of=ferry and instance=%s", o, o.Metadata.Labels, release)
				}
			}
		})
	}
}

// typed maps every kind the chart renders to its Go type (nil: checked as
// unstructured YAML).
func typed(kind string) any {
	switch kind {
	case "ServiceAccount":
		return &corev1.ServiceAccount{}
	case "Service":
		return &corev1.Service{}
	case "Secret":
		return &corev1.Secret{}
	case "PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "Deployment":
		return &appsv1.Deployment{}
	case "ClusterRole":
		return &rbacv1.ClusterRole{}
	case "ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "Role":
		return &rbacv1.Role{}
	case "RoleBinding":
		return &rbacv1.RoleBinding{}
	case "CustomResourceDefinition":
		return &apiextensionsv1.CustomResourceDefinition{}
	case "ValidatingAdmissionPolicy":
		return &admissionregistrationv1.ValidatingAdmissionPolicy{}
	case "ValidatingAdmissionPolicyBinding":
		return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	}
	return nil
}

func deployment(t *testing.T, objs []object, name string) (appsv1.Deployment, corev1.Container) {
	t.Helper()
	var d appsv1.Deployment
	decodeStrict(t, find(t, objs, "Deployment", name), &d)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment %s has %d containers, want 1", name, n)
	}
	return d, d.Spec.Template.Spec.Containers[0]
}

// mounted describes what a path in a container comes from: "secret NAME
// KEY" or "configMap NAME KEY" for a file of a Secret or ConfigMap, "secret
// NAME" or "configMap NAME" for its whole volume, "claim NAME", "emptyDir",
// or "volume NAME" for other sources; "" when no volume is mounted there.
func mounted(pod corev1.PodSpec, c corev1.Container, file string) string {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, m.MountPath+"/")
		if !ok {
			if file != m.MountPath {
				continue
			}
			rel = ""
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			return "missing volume " + m.Name
		}
		v := pod.Volumes[i].VolumeSource
		key := func(items []corev1.KeyToPath) string {
			switch {
			case rel == "":
				return ""
			case len(items) == 0:
				return " " + rel
			}
			for _, it := range items {
				if it.Path == rel {
					return " " + it.Key
				}
			}
			return " (no item at " + rel + ")"
		}
		switch {
		case v.Secret != nil:
			return "secret " + v.Secret.SecretName + key(v.Secret.Items)
		case v.ConfigMap != nil:
			return "configMap " + v.ConfigMap.Name + key(v.ConfigMap.Items)
		case v.PersistentVolumeClaim != nil:
			return "claim " + v.PersistentVolumeClaim.ClaimName
		case v.EmptyDir != nil:
			return "emptyDir"
		}
		return "volume " + m.Name
	}
	return ""
}

// answerDirSize is the least sizeLimit of the answer file's emptyDir: the
// file grows to twice the default answer budget (192 MiB) at most.
var answerDirSize = resource.MustParse("384Mi")

// fileFlags are catalogd's flags that name a file or directory.
var fileFlags = []string{"--catalog", "--answer-cache-dir", "--data-dir", "--token-file", "--tls-cert-file", "--tls-key-file", "--tls-client-ca-file"}

func TestCatalogd(t *testing.T) {
	base := []string{"serve", "--listen=0.0.0.0:50051", "--metrics-listen=0.0.0.0:9090", "--log-format=json", "--answer-cache-dir=/var/cache/catalogd"}
	publishing := []string{"catalogd.publishing.enabled=true", "catalogd.publishing.tokens.inline=abcdefghijklmnopq"}
	tls := []string{"catalogd.tls.enabled=true", "catalogd.tls.secretName=catalogd-tls"}
	for _, tc := range []struct {
		name   string
		values []string
		sets   []string
		args   []string
		// mounts maps a path a flag names to what must be mounted there
		// (see mounted).
		mounts   map[string]string
		recreate bool
	}{
		{name: "defaults", args: base},
		{
			name: "catalogs, strict, log level, extra flags", sets: []string{
				"catalogd.catalogs[0].name=community", "catalogd.catalogs[0].volume.persistentVolumeClaim.claimName=community",
				"catalogd.catalogs[1].name=ours", "catalogd.catalogs[1].volume.configMap.name=our-catalog",
				"catalogd.strict=true", "catalogd.logLevel=debug", "catalogd.extraArgs[0]=--shutdown-timeout=20s",
			},
			args:   append(slices.Clone(base), "--log-level=debug", "--strict", "--catalog=/catalogs/community", "--catalog=/catalogs/ours", "--shutdown-timeout=20s"),
			mounts: map[string]string{"/catalogs/community": "claim community", "/catalogs/ours": "configMap our-catalog"},
		},
		{
			name: "TLS", sets: tls,
			args:   append(slices.Clone(base), "--tls-cert-file=/etc/catalogd/tls/tls.crt", "--tls-key-file=/etc/catalogd/tls/tls.key"),
			mounts: map[string]string{"/etc/catalogd/tls/tls.crt": "secret catalogd-tls tls.crt", "/etc/catalogd/tls/tls.key": "secret catalogd-tls tls.key"},
		},
		{
			name: "mutual TLS from a ConfigMap", sets: append([]string{"catalogd.tls.clientCA.configMapName=ci-clients", "catalogd.tls.clientCA.key=bundle.pem"}, tls...),
			args: append(slices.Clone(base), "--tls-cert-file=/etc/catalogd/tls/tls.crt", "--tls-key-file=/etc/catalogd/tls/tls.key", "--tls-client-ca-file=/etc/catalogd/client-ca/bundle.pem"),
			mounts: map[string]string{
				"/etc/catalogd/tls/tls.crt": "secret catalogd-tls tls.crt", "/etc/catalogd/tls/tls.key": "secret catalogd-tls tls.key",
				"/etc/catalogd/client-ca/bundle.pem": "configMap ci-clients bundle.pem",
			},
		},
		{
			name: "publishing with TLS", sets: append(slices.Clone(publishing), tls...),
			args: append(slices.Clone(base), "--data-dir=/var/lib/catalogd", "--token-file=/etc/catalogd/tokens/tokens",
				"--tls-cert-file=/etc/catalogd/tls/tls.crt", "--tls-key-file=/etc/catalogd/tls/tls.key"),
			mounts: map[string]string{
				"/var/lib/catalogd": "claim catalogd-data", "/etc/catalogd/tokens/tokens": "secret catalogd-publish-tokens tokens",
				"/etc/catalogd/tls/tls.crt": "secret catalogd-tls tls.crt", "/etc/catalogd/tls/tls.key": "secret catalogd-tls tls.key",
			},
			recreate: true,
		},
		{
			name: "publishing behind a proxy, existing Secret and claim", sets: []string{
				"catalogd.publishing.enabled=true", "catalogd.publishing.allowInsecure=true",
				"catalogd.publishing.tokens.existingSecret=ci-tokens", "catalogd.publishing.tokens.key=tokens.txt",
				"catalogd.publishing.persistence.existingClaim=published",
			},
			args:     append(slices.Clone(base), "--data-dir=/var/lib/catalogd", "--token-file=/etc/catalogd/tokens/tokens.txt", "--allow-insecure-publish"),
			mounts:   map[string]string{"/var/lib/catalogd": "claim published", "/etc/catalogd/tokens/tokens.txt": "secret ci-tokens tokens.txt"},
			recreate: true,
		},
		{
			name: "publishing without persistence", sets: append(append(slices.Clone(publishing), tls...), "catalogd.publishing.persistence.enabled=false"),
			args: append(slices.Clone(base), "--data-dir=/var/lib/catalogd", "--token-file=/etc/catalogd/tokens/tokens",
				"--tls-cert-file=/etc/catalogd/tls/tls.crt", "--tls-key-file=/etc/catalogd/tls/tls.key"),
			mounts:   map[string]string{"/var/lib/catalogd": "emptyDir", "/etc/catalogd/tokens/tokens": "secret catalogd-publish-tokens tokens"},
			recreate: true,
		},
		{
			name: "everything on", values: []string{allOn},
			args: append(slices.Clone(base), "--log-level=debug", "--strict", "--catalog=/catalogs/community",
				"--data-dir=/var/lib/catalogd", "--token-file=/etc/catalogd/tokens/tokens",
				"--tls-cert-file=/etc/catalogd/tls/tls.crt", "--tls-key-file=/etc/catalogd/tls/tls.key",
				"--tls-client-ca-file=/etc/catalogd/client-ca/ca.crt"),
			mounts: map[string]string{
				"/catalogs/community": "claim community-catalog", "/var/lib/catalogd": "claim catalogd-data",
				"/etc/catalogd/tokens/tokens":    "secret catalogd-publish-tokens tokens",
				"/etc/catalogd/client-ca/ca.crt": "secret catalogd-client-ca ca.crt",
			},
			recreate: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, c := deployment(t, render(t, tc.values, tc.sets...), "catalogd")
			pod := d.Spec.Template.Spec
			if !slices.Equal(c.Args, tc.args) {
				t.Errorf("args:\n got %q\nwant %q", c.Args, tc.args)
			}
			// Every file a flag names is mounted; the expected ones from
			// the expected source.
			for _, a := range c.Args {
				flag, file, ok := strings.Cut(a, "=")
				if !ok || !slices.Contains(fileFlags, flag) {
					continue
				}
				got := mounted(pod, c, file)
				if got == "" {
					t.Errorf("%s: nothing is mounted at %s", flag, file)
				} else if want, ok := tc.mounts[file]; ok && got != want {
					t.Errorf("%s: %s comes from %q, want %q", flag, file, got, want)
				}
			}
			// The answer file's directory is an emptyDir in every case.
			if got := mounted(pod, c, "/var/cache/catalogd"); got != "emptyDir" {
				t.Errorf("the answer directory comes from %q, want an emptyDir", got)
			}
			for file := range tc.mounts {
				if !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasSuffix(a, "="+file) }) {
					t.Errorf("no flag names %s", file)
				}
			}
			// Nothing is writable but the data directory and the answer
			// file's emptyDir, whose size is bounded.
			for _, m := range c.VolumeMounts {
				if m.ReadOnly || m.MountPath == "/var/lib/catalogd" {
					continue
				}
				if m.MountPath != "/var/cache/catalogd" {
					t.Errorf("volume %s at %s is writable; only the data directory and the answer directory may be", m.Name, m.MountPath)
					continue
				}
				i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
				if i < 0 || pod.Volumes[i].EmptyDir == nil || pod.Volumes[i].EmptyDir.SizeLimit == nil || pod.Volumes[i].EmptyDir.SizeLimit.Cmp(answerDirSize) < 0 {
					t.Errorf("the answer directory %s is not an emptyDir with a sizeLimit of at least %s (twice the default answer budget)", m.MountPath, answerDirSize.String())
				}
			}
			if got := d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType; got != tc.recreate {
				t.Errorf("strategy %q, want Recreate: %v", d.Spec.Strategy.Type, tc.recreate)
			}
			for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				switch {
				case p == nil:
					t.Errorf("no %s probe", kind)
				case p.HTTPGet == nil || p.HTTPGet.Port.String() != "metrics":
					// The gRPC port speaks TLS (the kubelet's gRPC probe
					// cannot) and its probe waits behind clients once
					// --max-connections is reached.
					t.Errorf("%s probe is not HTTP on the metrics port", kind)
				}
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("catalogd's pod mounts a service account token; it needs no API access")
			}
		})
	}
}

func TestPublishingObjects(t *testing.T) {
	objs := render(t, []string{allOn})
	var secret corev1.Secret
	decodeStrict(t, find(t, objs, "Secret", "catalogd-publish-tokens"), &secret)
	values := readValues(t, allOn)
	if got, want := string(secret.Data["tokens"]), values.Catalogd.Publishing.Tokens.Inline; got != want {
		t.Errorf("Secret tokens = %q, want the inline token file %q", got, want)
	}
	if enc := base64.StdEncoding.EncodeToString([]byte(values.Catalogd.Publishing.Tokens.Inline)); !strings.Contains(string(find(t, objs, "Secret", "catalogd-publish-tokens").Raw), enc) {
		t.Error("the Secret does not carry the token file base64-encoded in data")
	}
	var pvc corev1.PersistentVolumeClaim
	o := find(t, objs, "PersistentVolumeClaim", "catalogd-data")
	decodeStrict(t, o, &pvc)
	if o.Metadata.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the claim is not kept when the release is uninstalled")
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast" {
		t.Errorf("storageClassName = %v, want fast", pvc.Spec.StorageClassName)
	}
	if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("5Gi")) != 0 {
		t.Errorf("size = %s, want 5Gi", got.String())
	}
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("access modes %v", pvc.Spec.AccessModes)
	}
	objs = render(t, []string{allOn}, "catalogd.publishing.persistence.keep=false", "catalogd.publishing.persistence.storageClassName=")
	o = find(t, objs, "PersistentVolumeClaim", "catalogd-data")
	pvc = corev1.PersistentVolumeClaim{}
	decodeStrict(t, o, &pvc)
	if _, ok := o.Metadata.Annotations["helm.sh/resource-policy"]; ok {
		t.Error("keep=false still keeps the claim")
	}
	if pvc.Spec.StorageClassName != nil {
		t.Errorf("storageClassName = %q, want none (the cluster's default)", *pvc.Spec.StorageClassName)
	}
	var svc corev1.Service
	decodeStrict(t, find(t, objs, "Service", "catalogd"), &svc)
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] != "true" {
		t.Errorf("Service catalogd: type %s, annotations %v", svc.Spec.Type, svc.Annotations)
	}
}

// chartValues is the part of values.yaml the tests read.
type chartValues struct {
	Catalogd struct {
		Publishing struct {
			Tokens struct {
				Inline string `json:"inline"`
			} `json:"tokens"`
		} `json:"publishing"`
	} `json:"catalogd"`
}

func readValues(t *testing.T, file string) chartValues {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var v chartValues
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("testdata/%s: %v", file, err)
	}
	return v
}

func TestInstaller(t *testing.T) {
	tail := []string{"--catalog-tls-namespace=$(POD_NAMESPACE)", "--default-service-account=", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--log-format=json"}
	for _, tc := range []struct {
		name     string
		files    []string
		sets     []string
		args     []string
		replicas int32
		role     bool
	}{
		{"defaults", nil, nil, append([]string{"--leader-elect", "--leader-election-namespace=$(POD_NAMESPACE)"}, tail...), 1, true},
		{"no leader election", nil, []string{"installer.leaderElection.enabled=false"}, append([]string{"--leader-elect=false"}, tail...), 1, false},
		{"ports, log level, default ServiceAccount, extra flags", nil, []string{"installer.metricsPort=9443", "installer.probePort=9444", "installer.logLevel=error", "installer.logFormat=text", "installer.defaultServiceAccount=ferry-tenant", "installer.extraArgs[0]=--health-requeue=1s"},
			[]string{"--leader-elect", "--leader-election-namespace=$(POD_NAMESPACE)", "--catalog-tls-namespace=$(POD_NAMESPACE)", "--default-service-account=ferry-tenant", "--metrics-bind-address=:9443", "--health-probe-bind-address=:9444", "--log-format=text", "--log-level=error", "--health-requeue=1s"}, 1, true},
		{"everything on", []string{allOn}, nil, append(append([]string{"--leader-elect", "--leader-election-namespace=$(POD_NAMESPACE)"}, tail...), "--log-level=debug", "--health-requeue=10s"), 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.files, tc.sets...)
			d, c := deployment(t, objs, "ferry-installer")
			if !slices.Equal(c.Args, tc.args) {
				t.Errorf("args:\n got %q\nwant %q", c.Args, tc.args)
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != tc.replicas {
				t.Errorf("replicas = %v, want %d", d.Spec.Replicas, tc.replicas)
			}
			if d.Spec.Template.Spec.ServiceAccountName != "ferry-installer" {
				t.Errorf("serviceAccountName = %q", d.Spec.Template.Spec.ServiceAccountName)
			}
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			for _, a := range c.Args {
				for flag, port := range map[string]string{"--metrics-bind-address": "metrics", "--health-probe-bind-address": "probes"} {
					if v, ok := strings.CutPrefix(a, flag+"=:"); ok && v != strconv.Itoa(int(ports[port])) {
						t.Errorf("%s listens on %s but container port %s is %d", flag, v, port, ports[port])
					}
				}
			}
			_, role := lookup(objs, "Role", "ferry-installer-leader-election")
			_, binding := lookup(objs, "RoleBinding", "ferry-installer-leader-election")
			if role != tc.role || binding != tc.role {
				t.Errorf("leader election Role rendered: %v, RoleBinding: %v; want %v", role, binding, tc.role)
			}
			var svc corev1.Service
			decodeStrict(t, find(t, objs, "Service", "ferry-installer-metrics"), &svc)
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != ports["metrics"] || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
				t.Errorf("Service ferry-installer-metrics ports %+v, want metrics on %d", svc.Spec.Ports, ports["metrics"])
			}
		})
	}
}

// TestAdmissionDefaultServiceAccount: a Subscription naming no
// ServiceAccount is checked by the admission policy as naming the one the
// installer then uses.
func TestAdmissionDefaultServiceAccount(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
		want string
	}{
		{"none: naming none is left to the installer, which refuses it", nil, "''"},
		{"ferry-tenant", []string{"installer.defaultServiceAccount=ferry-tenant"}, "'ferry-tenant'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p admissionregistrationv1.ValidatingAdmissionPolicy
			decodeStrict(t, find(t, render(t, nil, tc.sets...), "ValidatingAdmissionPolicy", "ferry-subscription-serviceaccount"), &p)
			vars := map[string]string{}
			for _, v := range p.Spec.Variables {
				vars[v.Name] = v.Expression
			}
			if got := vars["defaultServiceAccount"]; got != tc.want {
				t.Errorf("variable defaultServiceAccount = %q, want %q", got, tc.want)
			}
			if !strings.Contains(vars["serviceAccount"], "variables.defaultServiceAccount") {
				t.Errorf("variable serviceAccount = %q does not fall back to defaultServiceAccount", vars["serviceAccount"])
			}
		})
	}
}

func TestImages(t *testing.T) {
	const digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	for _, tc := range []struct {
		name                string
		sets                []string
		installer, catalogd string
	}{
		{"appVersion by default", nil, "ghcr.io/ferrydev/ferry/installer:v0.1.0", "ghcr.io/ferrydev/ferry/catalogd:v0.1.0"},
		{"tag and repository", []string{"installer.image.repository=registry.example.com/ferry/installer", "installer.image.tag=v0.2.0"},
			"registry.example.com/ferry/installer:v0.2.0", "ghcr.io/ferrydev/ferry/catalogd:v0.1.0"},
		{"digest wins over the tag", []string{"catalogd.image.tag=v0.2.0", "catalogd.image.digest=" + digest},
			"ghcr.io/ferrydev/ferry/installer:v0.1.0", "ghcr.io/ferrydev/ferry/catalogd@" + digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, nil, tc.sets...)
			if _, c := deployment(t, objs, "ferry-installer"); c.Image != tc.installer {
				t.Errorf("installer image %q, want %q", c.Image, tc.installer)
			}
			if _, c := deployment(t, objs, "catalogd"); c.Image != tc.catalogd {
				t.Errorf("catalogd image %q, want %q", c.Image, tc.catalogd)
			}
		})
	}
}

// TestImagesFromMakeImages: the values make images-push writes
// (images.ChartValues) pin both images by digest, and the chart's default
// images are the ones make images names (images.DefaultRepository).
func TestImagesFromMakeImages(t *testing.T) {
	const version = "v0.2.0-3-gabcdef0"
	var pushed []images.Pushed
	want := map[string]string{}
	for i, c := range images.Commands {
		repo := "127.0.0.1:5000/ferry/" + c.Name
		tag, err := crname.NewTag(repo + ":" + version)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := crname.NewDigest(repo + "@sha256:" + strings.Repeat(strconv.Itoa(i+1), 64))
		if err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, images.Pushed{Command: c, Tag: tag, Digest: digest})
		want[c.Name] = digest.String()
	}
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte(images.ChartValues(pushed)), 0o600); err != nil {
		t.Fatal(err)
	}
	pinned := render(t, []string{file})
	defaults := render(t, nil)
	deployments := map[string]string{"installer": "ferry-installer", "catalogd": "catalogd"}
	for _, c := range images.Commands {
		d, ok := deployments[c.Name]
		if !ok {
			t.Fatalf("make images builds %s, which the chart does not deploy", c.Name)
		}
		if _, ct := deployment(t, pinned, d); ct.Image != want[c.Name] {
			t.Errorf("%s image with the values of make images-push: %q, want %q", c.Name, ct.Image, want[c.Name])
		}
		if _, ct := deployment(t, defaults, d); !strings.HasPrefix(ct.Image, images.DefaultRepository+"/"+c.Name+":") {
			t.Errorf("%s default image %q is not in %s", c.Name, ct.Image, images.DefaultRepository)
		}
	}
}

func TestServiceMonitors(t *testing.T) {
	if objs := render(t, nil); slices.ContainsFunc(objs, func(o object) bool { return o.Kind == "ServiceMonitor" }) {
		t.Error("a ServiceMonitor is rendered although metrics.serviceMonitor.enabled is false")
	}
	objs := render(t, []string{allOn})
	for monitor, service := range map[string]string{"ferry-installer": "ferry-installer-metrics", "catalogd": "catalogd"} {
		var sm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string            `json:"name"`
				Namespace string            `json:"namespace"`
				Labels    map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				NamespaceSelector struct {
					MatchNames []string `json:"matchNames"`
				} `json:"namespaceSelector"`
				Endpoints []struct {
					Port     string `json:"port"`
					Path     string `json:"path"`
					Interval string `json:"interval"`
				} `json:"endpoints"`
			} `json:"spec"`
		}
		decodeStrict(t, find(t, objs, "ServiceMonitor", monitor), &sm)
		var svc corev1.Service
		decodeStrict(t, find(t, objs, "Service", service), &svc)
		if sm.APIVersion != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor %s: apiVersion %s", monitor, sm.APIVersion)
		}
		if len(sm.Spec.Selector.MatchLabels) == 0 {
			t.Fatalf("ServiceMonitor %s selects nothing", monitor)
		}
		for k, v := range sm.Spec.Selector.MatchLabels {
			if svc.Labels[k] != v {
				t.Errorf("ServiceMonitor %s selects %s=%s, which Service %s lacks", monitor, k, v, service)
			}
		}
		if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
			t.Errorf("ServiceMonitor %s watches namespaces %v", monitor, sm.Spec.NamespaceSelector.MatchNames)
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Interval != "30s" {
			t.Errorf("ServiceMonitor %s endpoints %+v", monitor, sm.Spec.Endpoints)
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
			t.Errorf("Service %s has no port named metrics", service)
		}
		if sm.Metadata.Labels["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s lacks the label of metrics.serviceMonitor.labels", monitor)
		}
	}
}

// permission is one grant of a rule, expanded.
type permission struct{ group, resource, name, verb, url string }

// permissions expands rules into the set of grants they make: two lists of
// rules are the same RBAC when their sets are equal, whatever their order
// or grouping.
func permissions(rules []rbacv1.PolicyRule) map[permission]bool {
	out := map[permission]bool{}
	or := func(s []string) []string {
		if len(s) == 0 {
			return []string{""}
		}
		return s
	}
	for _, r := range rules {
		for _, v := range r.Verbs {
			for _, u := range r.NonResourceURLs {
				out[permission{verb: v, url: u}] = true
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, n := range or(r.ResourceNames) {
						out[permission{group: g, resource: res, name: n, verb: v}] = true
					}
				}
			}
		}
	}
	return out
}

func diffPermissions(t *testing.T, what string, chart, config []rbacv1.PolicyRule) {
	t.Helper()
	a, b := permissions(chart), permissions(config)
	for _, p := range slices.SortedFunc(maps.Keys(a), comparePermission) {
		if !b[p] {
			t.Errorf("%s: the chart grants %+v, config/ does not", what, p)
		}
	}
	for _, p := range slices.SortedFunc(maps.Keys(b), comparePermission) {
		if !a[p] {
			t.Errorf("%s: config/ grants %+v, the chart does not", what, p)
		}
	}
	if len(a) == 0 {
		t.Errorf("%s grants nothing", what)
	}
}

func comparePermission(x, y permission) int {
	return strings.Compare(x.group+"/"+x.resource+"/"+x.name+"/"+x.verb+"/"+x.url, y.group+"/"+y.resource+"/"+y.name+"/"+y.verb+"/"+y.url)
}

// TestSameAsConfig: with default values the chart and config/default
// install the same CRDs, grant the same RBAC to the same subjects, and run
// the same containers, so either can deploy Ferry.
func TestSameAsConfig(t *testing.T) {
	chart, config := render(t, nil), kustomize(t, "default")

	t.Run("CRDs", func(t *testing.T) {
		crds := func(objs []object) map[string]apiextensionsv1.CustomResourceDefinitionSpec {
			out := map[string]apiextensionsv1.CustomResourceDefinitionSpec{}
			for _, o := range objs {
				if o.Kind == "CustomResourceDefinition" {
					var crd apiextensionsv1.CustomResourceDefinition
					decodeStrict(t, o, &crd)
					out[crd.Name] = crd.Spec
				}
			}
			return out
		}
		got, want := crds(chart), crds(config)
		if len(want) == 0 {
			t.Fatal("config/default renders no CRDs")
		}
		for _, name := range slices.Sorted(maps.Keys(want)) {
			g, ok := got[name]
			switch {
			case !ok:
				t.Errorf("CRD %s of config/ is not in the chart (run make generate)", name)
			case !equality.Semantic.DeepEqual(g, want[name]):
				t.Errorf("CRD %s differs from config/ (run make generate): %s", name, firstDifference(g, want[name]))
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("CRD %s of the chart is not in config/", name)
			}
		}
	})

	t.Run("ClusterRole", func(t *testing.T) {
		var a, b rbacv1.ClusterRole
		decodeStrict(t, find(t, chart, "ClusterRole", "ferry-installer"), &a)
		decodeStrict(t, find(t, config, "ClusterRole", "ferry-installer"), &b)
		diffPermissions(t, "ClusterRole ferry-installer", a.Rules, b.Rules)
		if !reflect.DeepEqual(a.AggregationRule, b.AggregationRule) {
			t.Errorf("aggregation rule %+v, config/ %+v", a.AggregationRule, b.AggregationRule)
		}
		var ab, bb rbacv1.ClusterRoleBinding
		decodeStrict(t, find(t, chart, "ClusterRoleBinding", "ferry-installer"), &ab)
		decodeStrict(t, find(t, config, "ClusterRoleBinding", "ferry-installer"), &bb)
		if !reflect.DeepEqual(ab.RoleRef, bb.RoleRef) || !reflect.DeepEqual(ab.Subjects, bb.Subjects) {
			t.Errorf("ClusterRoleBinding: %+v %+v, config/ %+v %+v", ab.RoleRef, ab.Subjects, bb.RoleRef, bb.Subjects)
		}
	})

	t.Run("leader election Role", func(t *testing.T) {
		var a, b rbacv1.Role
		decodeStrict(t, find(t, chart, "Role", "ferry-installer-leader-election"), &a)
		decodeStrict(t, find(t, config, "Role", "ferry-installer-leader-election"), &b)
		diffPermissions(t, "Role ferry-installer-leader-election", a.Rules, b.Rules)
		var ab, bb rbacv1.RoleBinding
		decodeStrict(t, find(t, chart, "RoleBinding", "ferry-installer-leader-election"), &ab)
		decodeStrict(t, find(t, config, "RoleBinding", "ferry-installer-leader-election"), &bb)
		if !reflect.DeepEqual(ab.RoleRef, bb.RoleRef) || !reflect.DeepEqual(ab.Subjects, bb.Subjects) {
			t.Errorf("RoleBinding: %+v %+v, config/ %+v %+v", ab.RoleRef, ab.Subjects, bb.RoleRef, bb.Subjects)
		}
	})

	t.Run("no other roles", func(t *testing.T) {
		for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
			var a, b []string
			for _, o := range chart {
				if o.Kind == kind {
					a = append(a, o.Metadata.Name)
				}
			}
			for _, o := range config {
				if o.Kind == kind {
					b = append(b, o.Metadata.Name)
				}
			}
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Errorf("%s: the chart renders %v, config/ %v", kind, a, b)
			}
		}
	})

	t.Run("objects", func(t *testing.T) {
		// The chart leaves the namespace to helm install --create-namespace.
		without := func(objs []object) []string {
			var out []string
			for _, o := range objs {
				if o.Kind != "Namespace" {
					out = append(out, o.String())
				}
			}
			slices.Sort(out)
			return out
		}
		if a, b := without(chart), without(config); !slices.Equal(a, b) {
			t.Errorf("the chart renders\n%v\nconfig/ renders\n%v", a, b)
		}
	})

	for _, name := range []string{"ferry-installer", "catalogd"} {
		t.Run("Deployment "+name, func(t *testing.T) { sameDeployment(t, chart, config, name, false) })
	}

	t.Run("Services", func(t *testing.T) {
		for _, name := range []string{"catalogd", "ferry-installer-metrics"} {
			var a, b corev1.Service
			decodeStrict(t, find(t, chart, "Service", name), &a)
			decodeStrict(t, find(t, config, "Service", name), &b)
			for _, s := range []*corev1.Service{&a, &b} {
				if s.Spec.Type == "" { // the API server's default
					s.Spec.Type = corev1.ServiceTypeClusterIP
				}
			}
			if !equality.Semantic.DeepEqual(a.Spec, b.Spec) {
				t.Errorf("Service %s differs from config/: %s", name, firstDifference(a.Spec, b.Spec))
			}
		}
	})
}

// sameDeployment compares the Deployment name of the chart and of config/:
// the container, the identity, the selector and the pod security context
// (to which the chart may add fsGroup, for catalogd's volumes); with
// volumes, also the pod's volumes, the pod's fsGroup and the strategy.
func sameDeployment(t *testing.T, chart, config []object, name string, volumes bool) {
	t.Helper()
	a, ac := deployment(t, chart, name)
	b, bc := deployment(t, config, name)
	ac.ImagePullPolicy = bc.ImagePullPolicy // config/ leaves it to the API server's default
	if !equality.Semantic.DeepEqual(ac, bc) {
		t.Errorf("container differs from config/: %s", firstDifference(ac, bc))
	}
	as, bs := a.Spec.Template.Spec, b.Spec.Template.Spec
	if as.ServiceAccountName != bs.ServiceAccountName || !reflect.DeepEqual(as.AutomountServiceAccountToken, bs.AutomountServiceAccountToken) {
		t.Errorf("identity: serviceAccountName %q automount %v, config/ %q %v", as.ServiceAccountName, as.AutomountServiceAccountToken, bs.ServiceAccountName, bs.AutomountServiceAccountToken)
	}
	if !reflect.DeepEqual(a.Spec.Selector, b.Spec.Selector) {
		t.Errorf("selector %v, config/ %v (selectors are immutable: they must match to switch between the two)", a.Spec.Selector, b.Spec.Selector)
	}
	psc, csc := as.SecurityContext, bs.SecurityContext
	if psc == nil || csc == nil ||
		!reflect.DeepEqual(psc.RunAsNonRoot, csc.RunAsNonRoot) || !reflect.DeepEqual(psc.RunAsUser, csc.RunAsUser) ||
		!reflect.DeepEqual(psc.RunAsGroup, csc.RunAsGroup) || !reflect.DeepEqual(psc.SeccompProfile, csc.SeccompProfile) {
		t.Fatalf("pod security context %+v, config/ %+v", psc, csc)
	}
	if !volumes {
		return
	}
	if !equality.Semantic.DeepEqual(as.Volumes, bs.Volumes) {
		t.Errorf("volumes differ from config/: %s", firstDifference(as.Volumes, bs.Volumes))
	}
	if !reflect.DeepEqual(psc.FSGroup, csc.FSGroup) || !reflect.DeepEqual(psc.FSGroupChangePolicy, csc.FSGroupChangePolicy) {
		t.Errorf("fsGroup %v (%v), config/ %v (%v)", psc.FSGroup, psc.FSGroupChangePolicy, csc.FSGroup, csc.FSGroupChangePolicy)
	}
	if !reflect.DeepEqual(a.Spec.Strategy, b.Spec.Strategy) {
		t.Errorf("strategy %+v, config/ %+v", a.Spec.Strategy, b.Spec.Strategy)
	}
}

// TestSameAsConfigPublishing: the chart with publishing and TLS on (the
// Secrets config/publishing names) renders the catalogd and the claim of
// config/publishing, and otherwise what config/default does.
func TestSameAsConfigPublishing(t *testing.T) {
	chart := render(t, nil, "catalogd.publishing.enabled=true", "catalogd.publishing.tokens.existingSecret=catalogd-publish-tokens",
		"catalogd.tls.enabled=true", "catalogd.tls.secretName=catalogd-tls")
	config := kustomize(t, "publishing")
	sameDeployment(t, chart, config, "catalogd", true)
	sameDeployment(t, chart, config, "ferry-installer", false)
	var a, b corev1.PersistentVolumeClaim
	decodeStrict(t, find(t, chart, "PersistentVolumeClaim", "catalogd-data"), &a)
	decodeStrict(t, find(t, config, "PersistentVolumeClaim", "catalogd-data"), &b)
	if !equality.Semantic.DeepEqual(a.Spec, b.Spec) {
		t.Errorf("claim catalogd-data differs from config/publishing: %s", firstDifference(a.Spec, b.Spec))
	}
	kinds := func(objs []object) []string {
		var out []string
		for _, o := range objs {
			if o.Kind != "Namespace" {
				out = append(out, o.String())
			}
		}
		slices.Sort(out)
		return out
	}
	if a, b := kinds(chart), kinds(config); !slices.Equal(a, b) {
		t.Errorf("the chart renders\n%v\nconfig/publishing renders\n%v", a, b)
	}
}
