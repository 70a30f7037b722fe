package install_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
)

const (
	sa      = "lighthouse-operator-controller-manager"
	rbac130 = "lighthouse-operator.v1.3.0-" + sa + "-<hash>"
)

func TestRenderObjectSet(t *testing.T) {
	tests := []struct {
		name       string
		mode       v1alpha1.InstallMode
		targets    []string
		wantMode   v1alpha1.InstallMode
		wantTarget string
		want       []string
	}{
		{
			name: "SingleNamespace gives a Role in the install namespace and in the target", mode: v1alpha1.InstallModeSingleNamespace,
			targets:  []string{"team-a"},
			wantMode: v1alpha1.InstallModeSingleNamespace, wantTarget: "team-a",
			want: []string{
				"CustomResourceDefinition beacons.lighthouse.ferry.dev",
				"ServiceAccount ops/" + sa,
				"ClusterRole " + rbac130,
				"Role ops/" + rbac130,
				"Role team-a/" + rbac130,
				"ClusterRoleBinding " + rbac130,
				"RoleBinding ops/" + rbac130,
				"RoleBinding team-a/" + rbac130,
				"ConfigMap ops/lighthouse-operator-config",
				"Service ops/lighthouse-operator-metrics",
				"Deployment ops/" + sa,
			},
		},
		{
			name: "MultiNamespace gives a Role in every target, sorted, the install namespace once", mode: v1alpha1.InstallModeMultiNamespace,
			targets:  []string{"team-b", "ops", "team-a"},
			wantMode: v1alpha1.InstallModeMultiNamespace, wantTarget: "ops,team-a,team-b",
			want: []string{
				"CustomResourceDefinition beacons.lighthouse.ferry.dev",
				"ServiceAccount ops/" + sa,
				"ClusterRole " + rbac130,
				"Role ops/" + rbac130,
				"Role team-a/" + rbac130,
				"Role team-b/" + rbac130,
				"ClusterRoleBinding " + rbac130,
				"RoleBinding ops/" + rbac130,
				"RoleBinding team-a/" + rbac130,
				"RoleBinding team-b/" + rbac130,
				"ConfigMap ops/lighthouse-operator-config",
				"Service ops/lighthouse-operator-metrics",
				"Deployment ops/" + sa,
			},
		},
		{
			name: "OwnNamespace gives a Role for permissions", mode: v1alpha1.InstallModeOwnNamespace,
			wantMode: v1alpha1.InstallModeOwnNamespace, wantTarget: "ops",
			want: []string{
				"CustomResourceDefinition beacons.lighthouse.ferry.dev",
				"ServiceAccount ops/" + sa,
				"ClusterRole " + rbac130,
				"Role ops/" + rbac130,
				"ClusterRoleBinding " + rbac130,
				"RoleBinding ops/" + rbac130,
				"ConfigMap ops/lighthouse-operator-config",
				"Service ops/lighthouse-operator-metrics",
				"Deployment ops/" + sa,
			},
		},
		{
			name: "AllNamespaces grants permissions cluster-wide", mode: v1alpha1.InstallModeAllNamespaces,
			wantMode: v1alpha1.InstallModeAllNamespaces, wantTarget: "",
			want: []string{
				"CustomResourceDefinition beacons.lighthouse.ferry.dev",
				"ServiceAccount ops/" + sa,
				"ClusterRole " + rbac130,
				"ClusterRole " + rbac130,
				"ClusterRoleBinding " + rbac130,
				"ClusterRoleBinding " + rbac130,
				"ConfigMap ops/lighthouse-operator-config",
				"Service ops/lighthouse-operator-metrics",
				"Deployment ops/" + sa,
			},
		},
		{
			name: "no mode picks AllNamespaces when supported", mode: "",
			wantMode: v1alpha1.InstallModeAllNamespaces, wantTarget: "",
			want: []string{
				"CustomResourceDefinition beacons.lighthouse.ferry.dev",
				"ServiceAccount ops/" + sa,
				"ClusterRole " + rbac130,
				"ClusterRole " + rbac130,
				"ClusterRoleBinding " + rbac130,
				"ClusterRoleBinding " + rbac130,
				"ConfigMap ops/lighthouse-operator-config",
				"Service ops/lighthouse-operator-metrics",
				"Deployment ops/" + sa,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			in.Manifests = editCSV(t, in.Manifests, supportAllModes)
			in.InstallMode = tt.mode
			in.TargetNamespaces = tt.targets
			r := render(t, in)
			matchSet(t, objectSet(r), tt.want)
			if r.InstallMode != tt.wantMode || r.TargetNamespaces != tt.wantTarget {
				t.Errorf("mode, target = %s, %q; want %s, %q", r.InstallMode, r.TargetNamespaces, tt.wantMode, tt.wantTarget)
			}
			names := map[string]bool{}
			for _, o := range r.Objects {
				l := o.GetLabels()
				if l[install.LabelManagedBy] != "ferry" || l[install.LabelOwnerNamespace] != "ops" || l[install.LabelOwnerName] != "sub" || l[install.LabelPackage] != lighthouse {
					t.Errorf("%s %s labels = %v, want Ferry's ownership labels", o.GetKind(), o.GetName(), l)
				}
				if !install.OwnerSelector(in.Owner).Matches(labelSet(l)) {
					t.Errorf("OwnerSelector does not select %s %s", o.GetKind(), o.GetName())
				}
				key := o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
				if names[key] {
					t.Errorf("%s rendered twice", key)
				}
				names[key] = true
			}
			// Every binding binds the service account of the install namespace
			// to a role of the same name.
			for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
				for _, o := range findAll(r, kind) {
					var b rbacv1.ClusterRoleBinding
					fromUnstructured(t, o.Object, &b)
					if b.RoleRef.Name != o.GetName() || len(b.Subjects) != 1 || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != "ops" || b.Subjects[0].Kind != "ServiceAccount" {
						t.Errorf("%s %s binds %+v to %+v", kind, o.GetName(), b.Subjects, b.RoleRef)
					}
				}
			}
			d := deployment(t, r)
			if got := d.Spec.Template.Annotations["olm.targetNamespaces"]; got != tt.wantTarget {
				t.Errorf("olm.targetNamespaces = %q, want %q", got, tt.wantTarget)
			}
			if got := envValue(d, "REGION"); got != "us-east-1" {
				t.Errorf("REGION = %q, want the bundle's default us-east-1", got)
			}
		})
	}
}

// supportAllModes makes the CSV support every install mode.
func supportAllModes(csv map[string]any) {
	var modes []any
	for _, m := range v1alpha1.InstallModes {
		modes = append(modes, map[string]any{"type": string(m), "supported": true})
	}
	csv["spec"].(map[string]any)["installModes"] = modes
}

func TestRenderRolesKeepTheirRules(t *testing.T) {
	for _, mode := range []v1alpha1.InstallMode{v1alpha1.InstallModeOwnNamespace, v1alpha1.InstallModeAllNamespaces} {
		t.Run(string(mode), func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			in.InstallMode = mode
			r := render(t, in)
			var resources []string
			for _, kind := range []string{"Role", "ClusterRole"} {
				for _, o := range findAll(r, kind) {
					var role rbacv1.ClusterRole
					fromUnstructured(t, o.Object, &role)
					for _, rule := range role.Rules {
						resources = append(resources, rule.Resources...)
					}
				}
			}
			for _, want := range []string{"configmaps", "leases", "events", "beacons", "beacons/status", "signalstores"} {
				if !slices.Contains(resources, want) {
					t.Errorf("roles grant %v, want %s among them", resources, want)
				}
			}
		})
	}
}

func TestRenderNamesAreStableAndDistinct(t *testing.T) {
	a := render(t, input(t, "ops", lighthouse, "1.3.0"))
	b := render(t, input(t, "ops", lighthouse, "1.3.0"))
	if !slices.Equal(objectSet(a), objectSet(b)) {
		t.Fatalf("two renders differ:\n%v\n%v", objectSet(a), objectSet(b))
	}
	other := render(t, input(t, "team-b", lighthouse, "1.3.0"))
	if find(t, a, "ClusterRole", "").GetName() == find(t, other, "ClusterRole", "").GetName() {
		t.Errorf("installs in two namespaces share ClusterRole %s", find(t, a, "ClusterRole", "").GetName())
	}
	long := input(t, "ops", lighthouse, "1.3.0")
	long.Owner.Name = strings.Repeat("s", 200)
	r := render(t, long)
	for _, o := range r.Objects {
		if len(o.GetName()) > 253 {
			t.Errorf("name %s is longer than 253 characters", o.GetName())
		}
		if got := o.GetLabels()[install.LabelOwnerName]; len(got) > 63 {
			t.Errorf("owner label %q is longer than 63 characters", got)
		}
	}
	if !install.OwnerSelector(long.Owner).Matches(labelSet(r.Objects[0].GetLabels())) {
		t.Error("OwnerSelector does not select objects of an owner with a long name")
	}
}

func TestRenderMergesConfig(t *testing.T) {
	grace := int64(30)
	cfg := &v1alpha1.SubscriptionConfig{
		Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}, {Name: "LOG_LEVEL", Value: "debug"}},
		Resources: &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		NodeSelector: map[string]string{"disk": "ssd"},
		Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "operators", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &grace}},
	}
	tests := []struct {
		name         string
		version      string
		cfg          *v1alpha1.SubscriptionConfig
		wantEnv      []string
		wantSelector map[string]string
		wantTols     int
		wantCPU      string
	}{
		{
			name: "no config keeps the bundle", version: "1.3.0",
			wantEnv: []string{"REGION=us-east-1", "WATCH_NAMESPACE=", "RELATED_IMAGE_BEACON_AGENT=registry.example.com/ferry/beacon-agent:v1.3.0"},
			wantCPU: "10m",
		},
		{
			name: "config overrides REGION in place and appends the rest", version: "1.3.0", cfg: cfg,
			wantEnv:      []string{"REGION=eu-west-1", "WATCH_NAMESPACE=", "RELATED_IMAGE_BEACON_AGENT=registry.example.com/ferry/beacon-agent:v1.3.0", "LOG_LEVEL=debug"},
			wantSelector: map[string]string{"disk": "ssd"},
			wantTols:     1, wantCPU: "50m",
		},
		{
			name: "nodeSelector merges with the bundle's", version: "1.4.0", cfg: cfg,
			wantEnv:      []string{"REGION=eu-west-1", "WATCH_NAMESPACE=", "RELATED_IMAGE_BEACON_AGENT=registry.example.com/ferry/beacon-agent:v1.4.0", "LOG_LEVEL=debug"},
			wantSelector: map[string]string{"disk": "ssd", "ferry.dev/rollback-demo": "never-matches"},
			wantTols:     1, wantCPU: "50m",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, tt.version)
			in.Config = tt.cfg
			d := deployment(t, render(t, in))
			ps := d.Spec.Template.Spec
			var gotEnv []string
			for _, e := range ps.Containers[0].Env {
				gotEnv = append(gotEnv, e.Name+"="+e.Value)
			}
			if !slices.Equal(gotEnv, tt.wantEnv) {
				t.Errorf("env = %v, want %v", gotEnv, tt.wantEnv)
			}
			if !mapsEqual(ps.NodeSelector, tt.wantSelector) {
				t.Errorf("nodeSelector = %v, want %v", ps.NodeSelector, tt.wantSelector)
			}
			if len(ps.Tolerations) != tt.wantTols {
				t.Errorf("tolerations = %v, want %d", ps.Tolerations, tt.wantTols)
			}
			if got := ps.Containers[0].Resources.Requests.Cpu().String(); got != tt.wantCPU {
				t.Errorf("cpu request = %s, want %s", got, tt.wantCPU)
			}
			if tt.cfg != nil {
				if _, ok := ps.Containers[0].Resources.Limits[corev1.ResourceCPU]; ok {
					t.Error("config resources should replace the bundle's, but the bundle's cpu limit is still there")
				}
			}
		})
	}
	// Config must not leak into the caller's Input.
	if cfg.Env[0].Value != "eu-west-1" || len(cfg.Tolerations) != 1 {
		t.Errorf("Render changed the config: %+v", cfg)
	}
}

func TestRenderAppliesConfigAsOLM(t *testing.T) {
	// bundleSide gives the bundle's pod a volume "data" mounted twice, a
	// volume "cache", envFrom a ConfigMap, node affinity and pod
	// anti-affinity, and a pod annotation.
	bundleSide := func(csv map[string]any) {
		ps := deploymentPodSpec(csv)
		ps["volumes"] = []any{
			map[string]any{"name": "data", "emptyDir": map[string]any{}},
			map[string]any{"name": "cache", "emptyDir": map[string]any{}},
		}
		c := ps["containers"].([]any)[0].(map[string]any)
		c["volumeMounts"] = []any{
			map[string]any{"name": "data", "mountPath": "/data"},
			map[string]any{"name": "cache", "mountPath": "/cache"},
			map[string]any{"name": "data", "mountPath": "/data-ro", "readOnly": true},
		}
		c["envFrom"] = []any{map[string]any{"configMapRef": map[string]any{"name": "bundle-env"}}}
		ps["affinity"] = map[string]any{
			"nodeAffinity":    map[string]any{"preferredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{"weight": 1, "preference": map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{"a"}}}}}}},
			"podAntiAffinity": map[string]any{"preferredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{"weight": 1, "podAffinityTerm": map[string]any{"topologyKey": "kubernetes.io/hostname"}}}},
		}
		tpl := csv["spec"].(map[string]any)["install"].(map[string]any)["spec"].(map[string]any)["deployments"].([]any)[0].(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)
		md, _ := tpl["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			tpl["metadata"] = md
		}
		md["annotations"] = map[string]any{"prometheus.io/scrape": "true"}
	}
	bundleEnvFrom := corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "bundle-env"}}}
	secretEnv := corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}}
	pvc := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}
	cache := corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	certs := corev1.Volume{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "certs"}}}
	bundleNode := &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}}}}
	bundleAnti := &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 1, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname"}}}}
	cfgNode := &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"arm64"}}}}}}}
	container := func(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }

	tests := []struct {
		name string
		cfg  v1alpha1.SubscriptionConfig
		// got picks the part of the rendered Deployment the case is about.
		got  func(d *appsv1.Deployment) any
		want any
	}{
		{
			name: "envFrom appended",
			cfg:  v1alpha1.SubscriptionConfig{EnvFrom: []corev1.EnvFromSource{secretEnv}},
			got:  func(d *appsv1.Deployment) any { return container(d).EnvFrom },
			want: []corev1.EnvFromSource{bundleEnvFrom, secretEnv},
		},
		{
			name: "envFrom equal to the bundle's is not added twice",
			cfg:  v1alpha1.SubscriptionConfig{EnvFrom: []corev1.EnvFromSource{bundleEnvFrom}},
			got:  func(d *appsv1.Deployment) any { return container(d).EnvFrom },
			want: []corev1.EnvFromSource{bundleEnvFrom},
		},
		{
			name: "volume of the same name replaces the bundle's in place, others appended",
			cfg:  v1alpha1.SubscriptionConfig{Volumes: []corev1.Volume{certs, pvc}},
			got:  func(d *appsv1.Deployment) any { return d.Spec.Template.Spec.Volumes },
			want: []corev1.Volume{pvc, cache, certs},
		},
		{
			name: "volumeMounts of a name replace every bundle mount of that name",
			cfg: v1alpha1.SubscriptionConfig{VolumeMounts: []corev1.VolumeMount{
				{Name: "certs", MountPath: "/etc/certs", ReadOnly: true},
				{Name: "data", MountPath: "/var/lib/data"},
			}},
			got: func(d *appsv1.Deployment) any { return container(d).VolumeMounts },
			want: []corev1.VolumeMount{
				{Name: "data", MountPath: "/var/lib/data"},
				{Name: "cache", MountPath: "/cache"},
				{Name: "certs", MountPath: "/etc/certs", ReadOnly: true},
			},
		},
		{
			name: "affinity part set replaces the bundle's, parts not set are kept",
			cfg:  v1alpha1.SubscriptionConfig{Affinity: &corev1.Affinity{NodeAffinity: cfgNode}},
			got:  func(d *appsv1.Deployment) any { return d.Spec.Template.Spec.Affinity },
			want: &corev1.Affinity{NodeAffinity: cfgNode, PodAntiAffinity: bundleAnti},
		},
		{
			name: "affinity part set but empty removes only that part",
			cfg:  v1alpha1.SubscriptionConfig{Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{}}},
			got:  func(d *appsv1.Deployment) any { return d.Spec.Template.Spec.Affinity },
			want: &corev1.Affinity{NodeAffinity: bundleNode},
		},
		{
			name: "empty affinity removes the bundle's",
			cfg:  v1alpha1.SubscriptionConfig{Affinity: &corev1.Affinity{}},
			got:  func(d *appsv1.Deployment) any { return d.Spec.Template.Spec.Affinity },
			want: (*corev1.Affinity)(nil),
		},
		{
			name: "no affinity keeps the bundle's",
			cfg:  v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "X", Value: "1"}}},
			got:  func(d *appsv1.Deployment) any { return d.Spec.Template.Spec.Affinity },
			want: &corev1.Affinity{NodeAffinity: bundleNode, PodAntiAffinity: bundleAnti},
		},
		{
			name: "pod annotations added; the bundle's and Ferry's keys keep their values",
			cfg: v1alpha1.SubscriptionConfig{Annotations: map[string]string{
				"team": "payments", "prometheus.io/scrape": "false", install.AnnotationTargetNamespaces: "elsewhere",
			}},
			got: func(d *appsv1.Deployment) any { return d.Spec.Template.Annotations },
			want: map[string]string{
				"team": "payments", "prometheus.io/scrape": "true", install.AnnotationTargetNamespaces: "",
			},
		},
		{
			name: "Deployment annotations added; Ferry's bundle annotation keeps its value",
			cfg: v1alpha1.SubscriptionConfig{Annotations: map[string]string{
				"team": "payments", install.AnnotationBundle: "forged",
			}},
			got: func(d *appsv1.Deployment) any { return d.Annotations },
			want: map[string]string{
				"team": "payments", install.AnnotationBundle: "lighthouse-operator.v1.3.0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			in.Manifests = editCSV(t, in.Manifests, bundleSide)
			cfg := tt.cfg.DeepCopy()
			in.Config = cfg
			d := deployment(t, render(t, in))
			if got := tt.got(d); !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if !equality.Semantic.DeepEqual(*cfg, tt.cfg) {
				t.Errorf("Render changed the config: %+v", cfg)
			}
		})
	}
}

func TestRenderConfigReachesInitContainers(t *testing.T) {
	in := input(t, "ops", lighthouse, "1.3.0")
	in.Manifests = editCSV(t, in.Manifests, func(csv map[string]any) {
		ps := deploymentPodSpec(csv)
		ps["initContainers"] = []any{map[string]any{"name": "init", "image": "busybox", "env": []any{map[string]any{"name": "REGION", "value": "x"}}}}
	})
	in.Config = &v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}}}
	d := deployment(t, render(t, in))
	if got := d.Spec.Template.Spec.InitContainers[0].Env; len(got) != 1 || got[0].Value != "eu-west-1" {
		t.Errorf("init container env = %v, want REGION=eu-west-1", got)
	}
}

func TestRenderInstallModeErrors(t *testing.T) {
	onlyOwn := func(csv map[string]any) {
		spec := csv["spec"].(map[string]any)
		spec["installModes"] = []any{
			map[string]any{"type": "OwnNamespace", "supported": true},
			map[string]any{"type": "AllNamespaces", "supported": false},
		}
	}
	onlySingle := func(csv map[string]any) {
		spec := csv["spec"].(map[string]any)
		spec["installModes"] = []any{
			map[string]any{"type": "SingleNamespace", "supported": true},
			map[string]any{"type": "MultiNamespace", "supported": true},
		}
	}
	many := make([]string, v1alpha1.MaxTargetNamespaces+1)
	for i := range many {
		many[i] = fmt.Sprintf("team-%d", i)
	}
	tests := []struct {
		name          string
		edit          func(map[string]any)
		mode          v1alpha1.InstallMode
		targets       []string
		wantRequested v1alpha1.InstallMode
		wantSupported []v1alpha1.InstallMode
		wantTargets   string // substring of the error's Targets
		wantMode      v1alpha1.InstallMode
	}{
		{name: "AllNamespaces not supported", edit: onlyOwn, mode: v1alpha1.InstallModeAllNamespaces, wantRequested: v1alpha1.InstallModeAllNamespaces, wantSupported: []v1alpha1.InstallMode{v1alpha1.InstallModeOwnNamespace}},
		{name: "no mode falls back to OwnNamespace", edit: onlyOwn, wantMode: v1alpha1.InstallModeOwnNamespace},
		{name: "SingleNamespace the operator does not support", mode: v1alpha1.InstallModeSingleNamespace, targets: []string{"team-a"}, wantRequested: v1alpha1.InstallModeSingleNamespace, wantSupported: []v1alpha1.InstallMode{v1alpha1.InstallModeOwnNamespace, v1alpha1.InstallModeAllNamespaces}},
		{name: "no mode and neither AllNamespaces nor OwnNamespace supported", edit: onlySingle, wantRequested: "", wantSupported: []v1alpha1.InstallMode{v1alpha1.InstallModeSingleNamespace, v1alpha1.InstallModeMultiNamespace}},
		{name: "MultiNamespace supported", edit: onlySingle, mode: v1alpha1.InstallModeMultiNamespace, targets: []string{"a", "b"}, wantMode: v1alpha1.InstallModeMultiNamespace},
		{name: "SingleNamespace without a target", edit: onlySingle, mode: v1alpha1.InstallModeSingleNamespace, wantRequested: v1alpha1.InstallModeSingleNamespace, wantTargets: "spec.targetNamespaces is empty"},
		{name: "SingleNamespace with two targets", edit: onlySingle, mode: v1alpha1.InstallModeSingleNamespace, targets: []string{"a", "b"}, wantRequested: v1alpha1.InstallModeSingleNamespace, wantTargets: "has 2 namespaces (a, b); SingleNamespace watches exactly one"},
		{name: "SingleNamespace naming the install namespace", edit: onlySingle, mode: v1alpha1.InstallModeSingleNamespace, targets: []string{"ops"}, wantRequested: v1alpha1.InstallModeSingleNamespace, wantTargets: "names the Subscription's own namespace ops; that is installMode OwnNamespace"},
		{name: "MultiNamespace with a target that is no namespace name", edit: onlySingle, mode: v1alpha1.InstallModeMultiNamespace, targets: []string{"a", "Team_B"}, wantRequested: v1alpha1.InstallModeMultiNamespace, wantTargets: `spec.targetNamespaces[1] "Team_B" is not a namespace name`},
		{name: "MultiNamespace with a target twice", edit: onlySingle, mode: v1alpha1.InstallModeMultiNamespace, targets: []string{"a", "a"}, wantRequested: v1alpha1.InstallModeMultiNamespace, wantTargets: "names a twice"},
		{name: "MultiNamespace with too many targets", edit: onlySingle, mode: v1alpha1.InstallModeMultiNamespace, targets: many, wantRequested: v1alpha1.InstallModeMultiNamespace, wantTargets: fmt.Sprintf("has %d namespaces; at most %d", len(many), v1alpha1.MaxTargetNamespaces)},
		{name: "targets with OwnNamespace", edit: onlyOwn, mode: v1alpha1.InstallModeOwnNamespace, targets: []string{"a"}, wantRequested: v1alpha1.InstallModeOwnNamespace, wantTargets: "spec.targetNamespaces (a) is only used with SingleNamespace and MultiNamespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			if tt.edit != nil {
				in.Manifests = editCSV(t, in.Manifests, tt.edit)
			}
			in.InstallMode = tt.mode
			in.TargetNamespaces = tt.targets
			r, err := install.Render(in)
			if tt.wantMode != "" {
				if err != nil || r.InstallMode != tt.wantMode {
					t.Fatalf("Render = %v, %v; want mode %s", r, err, tt.wantMode)
				}
				return
			}
			var ume *install.UnsupportedInstallModeError
			if !errors.As(err, &ume) {
				t.Fatalf("Render error = %v, want *UnsupportedInstallModeError", err)
			}
			if r != nil {
				t.Error("Render returned objects with its error")
			}
			if ume.Requested != tt.wantRequested || !slices.Equal(ume.Supported, tt.wantSupported) {
				t.Errorf("error = %+v, want requested %q supported %v", ume, tt.wantRequested, tt.wantSupported)
			}
			if (tt.wantTargets == "") != (ume.Targets == "") || !strings.Contains(ume.Targets, tt.wantTargets) {
				t.Errorf("error targets = %q, want %q", ume.Targets, tt.wantTargets)
			}
			t.Log(err)
		})
	}
}

func TestRenderInvalidBundles(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest
		want []string // substrings of Reason
	}{
		{
			name: "no CSV",
			edit: func(_ *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return without(ms, catalog.KindClusterServiceVersion)
			},
			want: []string{"no ClusterServiceVersion among the 3 manifests"},
		},
		{
			name: "two CSVs",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				for _, m := range ms {
					if m.Kind == catalog.KindClusterServiceVersion {
						m.Name = "lighthouse-operator.v9.9.9"
						return append(ms, m)
					}
				}
				return ms
			},
			want: []string{"2 ClusterServiceVersions", "lighthouse-operator.v1.3.0", "lighthouse-operator.v9.9.9"},
		},
		{
			name: "unknown kind",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return append(ms, manifest(t, map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": "migrate"}}))
			},
			want: []string{"Job migrate", "kind Job (apiVersion batch/v1) cannot be installed"},
		},
		{
			name: "same kind name in another group",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return append(ms, manifest(t, map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": map[string]any{"name": "web"}}))
			},
			want: []string{"kind Service (apiVersion serving.knative.dev/v1) cannot be installed"},
		},
		{
			name: "a shipped Deployment",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return append(ms, manifest(t, map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "extra"}}))
			},
			want: []string{"kind Deployment (apiVersion apps/v1) cannot be installed"},
		},
		{
			name: "manifest without apiVersion",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return append(ms, manifest(t, map[string]any{"kind": "ConfigMap", "metadata": map[string]any{"name": "loose"}}))
			},
			want: []string{"(ConfigMap loose) has no apiVersion"},
		},
		{
			name: "object shipped twice",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				for _, m := range ms {
					if m.Kind == "ConfigMap" {
						return append(ms, m)
					}
				}
				return ms
			},
			want: []string{"ConfigMap ops/lighthouse-operator-config is shipped twice"},
		},
		{
			name: "webhook definition without a deployment",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return editCSV(t, ms, func(csv map[string]any) {
					csv["spec"].(map[string]any)["webhookdefinitions"] = []any{map[string]any{"type": "ValidatingAdmissionWebhook", "generateName": "vbeacon.lighthouse.ferry.dev"}}
				})
			},
			want: []string{"spec.webhookdefinitions[0] (vbeacon.lighthouse.ferry.dev): deploymentName: is empty"},
		},
		{
			name: "API service definitions",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return editCSV(t, ms, func(csv map[string]any) {
					csv["spec"].(map[string]any)["apiservicedefinitions"] = map[string]any{"owned": []any{map[string]any{"name": "beacons", "group": "x.ferry.dev"}}}
				})
			},
			want: []string{"spec.apiservicedefinitions has 1 entries", "not supported yet"},
		},
		{
			name: "missing owned CRD",
			edit: func(_ *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return without(ms, "CustomResourceDefinition")
			},
			want: []string{"spec.customresourcedefinitions.owned[0] names CRD beacons.lighthouse.ferry.dev, which the bundle does not ship"},
		},
		{
			name: "owned CRD version not defined",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return editCSV(t, ms, func(csv map[string]any) {
					owned := csv["spec"].(map[string]any)["customresourcedefinitions"].(map[string]any)["owned"].([]any)
					owned[1].(map[string]any)["version"] = "v2"
				})
			},
			want: []string{"owned[1] names version v2 of CRD beacons.lighthouse.ferry.dev"},
		},
		{
			name: "install strategy other than deployment",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return editCSV(t, ms, func(csv map[string]any) {
					csv["spec"].(map[string]any)["install"].(map[string]any)["strategy"] = "helm"
				})
			},
			want: []string{`spec.install.strategy is "helm"`},
		},
		{
			name: "no deployments",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return editCSV(t, ms, func(csv map[string]any) {
					delete(csv["spec"].(map[string]any)["install"].(map[string]any)["spec"].(map[string]any), "deployments")
				})
			},
			want: []string{"spec.install.spec.deployments is empty"},
		},
		{
			name: "deployment spec of the wrong type",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return editCSV(t, ms, func(csv map[string]any) {
					deploymentPodSpec(csv)["containers"] = "manager"
				})
			},
			want: []string{"ClusterServiceVersion lighthouse-operator.v1.3.0 cannot be read"},
		},
		{
			name: "CSV name differs from the bundle",
			edit: func(t *testing.T, ms []catalog.Manifest) []catalog.Manifest {
				return editCSV(t, ms, func(csv map[string]any) {
					csv["metadata"].(map[string]any)["name"] = "lighthouse-operator.v1.3.1"
				})
			},
			want: []string{"named lighthouse-operator.v1.3.1, not lighthouse-operator.v1.3.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			in.Manifests = tt.edit(t, in.Manifests)
			r, err := install.Render(in)
			var ibe *install.InvalidBundleError
			if !errors.As(err, &ibe) {
				t.Fatalf("Render = %v, %v; want *InvalidBundleError", r, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(ibe.Reason, w) {
					t.Errorf("reason %q does not say %q", ibe.Reason, w)
				}
			}
			if !strings.Contains(err.Error(), "lighthouse-operator.v1.3.0") {
				t.Errorf("error %q does not name the bundle", err)
			}
		})
	}
}

func TestRenderShippedObjectsGoToTheInstallNamespace(t *testing.T) {
	in := input(t, "ops", lighthouse, "1.3.0")
	in.Manifests = append(in.Manifests,
		manifest(t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "elsewhere", "namespace": "kube-system", "resourceVersion": "7"}}),
		manifest(t, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": "extra-view"},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": sa}}}),
		manifest(t, map[string]any{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": map[string]any{"name": "lighthouse-high", "namespace": "ops"}, "value": 1000}),
	)
	r := render(t, in)
	cm := find(t, r, "ConfigMap", "elsewhere")
	if cm.GetNamespace() != "ops" || cm.GetResourceVersion() != "" {
		t.Errorf("shipped ConfigMap in %q with resourceVersion %q, want ops and none", cm.GetNamespace(), cm.GetResourceVersion())
	}
	if pc := find(t, r, "PriorityClass", "lighthouse-high"); pc.GetNamespace() != "" {
		t.Errorf("PriorityClass has namespace %q, want none", pc.GetNamespace())
	}
	var crb rbacv1.ClusterRoleBinding
	fromUnstructured(t, find(t, r, "ClusterRoleBinding", "extra-view").Object, &crb)
	if crb.Subjects[0].Namespace != "ops" {
		t.Errorf("subject namespace = %q, want the install namespace", crb.Subjects[0].Namespace)
	}
}

func TestChanges(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		cfg      *v1alpha1.SubscriptionConfig
		want     []string
		exact    bool
	}{
		{
			name: "1.2.0 to 1.3.0 changes images only", from: "1.2.0", to: "1.3.0", exact: true,
			want: []string{
				"Deployment ops/" + sa + ": image registry.example.com/ferry/lighthouse-operator:v1.2.0 -> registry.example.com/ferry/lighthouse-operator:v1.3.0",
				"Deployment ops/" + sa + ": env RELATED_IMAGE_BEACON_AGENT registry.example.com/ferry/beacon-agent:v1.2.0 -> registry.example.com/ferry/beacon-agent:v1.3.0",
			},
		},
		{
			name: "1.1.0 to 1.2.0 adds an API version and objects", from: "1.1.0", to: "1.2.0",
			want: []string{
				"CRD beacons.lighthouse.ferry.dev: new version v1",
				"CRD beacons.lighthouse.ferry.dev: storage version v1beta1 -> v1",
				"ConfigMap ops/lighthouse-operator-config: added",
				"Service ops/lighthouse-operator-metrics: added",
			},
		},
		{
			name: "1.3.0 back to 1.1.0 removes objects", from: "1.3.0", to: "1.1.0",
			want: []string{
				"ConfigMap ops/lighthouse-operator-config: removed",
				"Service ops/lighthouse-operator-metrics: removed",
				"CRD beacons.lighthouse.ferry.dev: version v1 removed",
			},
		},
		{
			name: "same version, new config", from: "1.3.0", to: "1.3.0", exact: true,
			cfg:  &v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}}},
			want: []string{"Deployment ops/" + sa + ": env REGION us-east-1 -> eu-west-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := render(t, input(t, "ops", lighthouse, tt.from))
			in := input(t, "ops", lighthouse, tt.to)
			in.Config = tt.cfg
			got := install.Changes(from, render(t, in))
			if tt.exact && !slices.Equal(got, tt.want) {
				t.Fatalf("Changes =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("Changes =\n  %s\nwant a line %q", strings.Join(got, "\n  "), w)
				}
			}
		})
	}
	if got := install.Changes(nil, render(t, input(t, "ops", lighthouse, "1.0.0"))); !slices.Contains(got, "ServiceAccount ops/"+sa+": added") {
		t.Errorf("Changes from nothing = %v, want every object added", got)
	}
}

// helpers for typed access

func deployment(t *testing.T, r *install.Rendered) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	fromUnstructured(t, find(t, r, "Deployment", sa).Object, &d)
	return &d
}

func envValue(d *appsv1.Deployment, name string) string {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func fromUnstructured(t *testing.T, obj map[string]any, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, out); err != nil {
		t.Fatal(err)
	}
}

func deploymentPodSpec(csv map[string]any) map[string]any {
	deps := csv["spec"].(map[string]any)["install"].(map[string]any)["spec"].(map[string]any)["deployments"].([]any)
	return deps[0].(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
