package subscription_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/revision"
)

// snapshotOf records an object's resourceVersion and labels, to check
// later that nothing changed it.
type snapshotOf struct {
	obj             client.Object
	resourceVersion string
	labels          map[string]string
}

func snap(t *testing.T, obj client.Object) snapshotOf {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	return snapshotOf{obj: obj, resourceVersion: obj.GetResourceVersion(), labels: obj.GetLabels()}
}

func (s snapshotOf) check(t *testing.T, when string) {
	t.Helper()
	got := s.obj.DeepCopyObject().(client.Object)
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(s.obj), got); err != nil {
		t.Errorf("%s: %T %s: %v", when, s.obj, s.obj.GetName(), err)
		return
	}
	if got.GetResourceVersion() != s.resourceVersion || !maps.Equal(got.GetLabels(), s.labels) || got.GetLabels()[install.LabelManagedBy] != "" {
		t.Errorf("%s: %T %s changed: resourceVersion %s (was %s), labels %v", when, s.obj, s.obj.GetName(), got.GetResourceVersion(), s.resourceVersion, got.GetLabels())
	}
}

// TestPreexistingObjectsStopTheInstall: a bundle ships a CRD, a ConfigMap
// and a ClusterRoleBinding named cluster-admin, and uses a ServiceAccount,
// that already exist and that Ferry did not create. Nothing is applied, the
// condition names each object and who manages it, and uninstalling leaves
// all of them as they were.
func TestPreexistingObjectsStopTheInstall(t *testing.T) {
	dir := sampleDir(t)
	manifests := filepath.Join(dir, "signal-store", "1.1.0", "manifests")
	for name, content := range map[string]string{
		"signal-store-settings_v1_configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: signal-store-settings\ndata:\n  retention: 7d\n",
		"cluster-admin_clusterrolebinding.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: cluster-admin\n" +
			"roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: signal-store-controller-manager\n",
	} {
		if err := os.WriteFile(filepath.Join(manifests, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, c, ns, cat := setup(t, dir, nil)
	ctx := context.Background()
	crd := handAppliedCRD(t, filepath.Join(manifests, "signals.ferry.dev_signalstores.yaml"))
	for _, o := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signal-store-controller-manager"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signal-store-settings"}, Data: map[string]string{"retention": "30d"}},
	} {
		if err := env.Client.Create(ctx, o, client.FieldOwner("platform-team")); err != nil {
			t.Fatal(err)
		}
	}
	before := []snapshotOf{
		snap(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signal-store-controller-manager"}}),
		snap(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signal-store-settings"}}),
		snap(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"}}),
		snap(t, &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: crd}}),
	}

	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.1.0"})
	sub := waitSub(t, c, ns, "signals", "refused for its existing objects", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeInstalled)
		return cond != nil && cond.Reason == v1alpha1.ReasonOwnershipConflict && cond.ObservedGeneration == s.Generation
	})
	msg := condition(sub, v1alpha1.TypeInstalled).Message
	for _, want := range []string{
		"signal-store 1.1.0 cannot be installed, nothing was applied",
		"ServiceAccount " + ns + "/signal-store-controller-manager already exists and was not created by Ferry (",
		"ConfigMap " + ns + "/signal-store-settings already exists and was not created by Ferry (field managers platform-team)",
		"ClusterRoleBinding cluster-admin already exists and was not created by Ferry (field managers ",
		"CRD " + crd + " already exists and was not created by Ferry (field managers kube-apiserver, platform-team)",
		"set spec.adoption.policy to AdoptUnmanaged",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Installed message lacks %q:\n%s", want, msg)
		}
	}
	if sub.Status.State != v1alpha1.StateFailed || len(revisionsOf(t, c, ns, "signals")) != 0 {
		t.Errorf("state %s, revisions %s: want Failed and none recorded", sub.Status.State, outcomes(revisionsOf(t, c, ns, "signals")))
	}
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil || len(deps.Items) != 0 {
		t.Errorf("something was applied: %d Deployments (%v)", len(deps.Items), err)
	}
	for _, b := range before {
		b.check(t, "after the refused install")
	}

	if err := c.Delete(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(sub), &v1alpha1.Subscription{})), nil
	}); err != nil {
		t.Fatal("Subscription not removed")
	}
	for _, b := range before {
		b.check(t, "after uninstall")
	}
}

// handAppliedCRD creates the CRD in file as someone other than Ferry would
// (field manager platform-team, no Ferry labels), waits until it is
// established, so that nothing changes it any more, and returns its name.
// It is deleted at the end of the test.
func handAppliedCRD(t *testing.T, file string) string {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	// One more served version than the bundle ships: installing the bundle's
	// CRD over it would be an unsafe change (a served version removed), so
	// the install must stop on ownership before the CRD safety check judges
	// someone else's CRD.
	extra := *crd.Spec.Versions[0].DeepCopy()
	extra.Name, extra.Storage = "v0alpha1", false
	crd.Spec.Versions = append(crd.Spec.Versions, extra)
	if err := env.Client.Create(ctx, crd, client.FieldOwner("platform-team")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { freshCRDs(t, crd.Name) })
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return false, err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("CRD %s not established: %v", crd.Name, err)
	}
	return crd.Name
}

// forgedObjects is what an attacker would like restored: a binding of
// cluster-admin to the namespace's default ServiceAccount.
func forgedObjects(ns string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": "forged-admin-" + ns},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "default", "namespace": ns}},
	}}}
}

// gzipBomb is a blob that decompresses to more than a revision may hold.
func gzipBomb(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for written := 0; written <= revision.MaxObjectsBytes; written += len(zeros) {
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func blobSecret(ns string, data []byte) *corev1.Secret {
	sum := sha256.Sum256(data)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ferry-blob-" + hex.EncodeToString(sum[:])[:40], Labels: map[string]string{revision.LabelBlob: "true"}},
		Type:       revision.SecretTypeBlob, Immutable: ptr.To(true),
		Data: map[string][]byte{"data": data},
	}
}

// recreate replaces Revision rev (its spec is immutable) with one whose
// spec edit changed.
func recreate(t *testing.T, rev *v1alpha1.Revision, edit func(*v1alpha1.RevisionSpec)) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Delete(ctx, rev); err != nil {
		t.Fatal(err)
	}
	forged := &v1alpha1.Revision{ObjectMeta: metav1.ObjectMeta{Namespace: rev.Namespace, Name: rev.Name, Labels: rev.Labels}, Spec: *rev.Spec.DeepCopy()}
	edit(&forged.Spec)
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := env.Client.Create(ctx, forged)
		return err == nil, client.IgnoreAlreadyExists(err)
	}); err != nil {
		t.Fatal(err)
	}
	forged.Status = rev.Status
	if err := env.Client.Status().Update(ctx, forged); err != nil {
		t.Fatal(err)
	}
}

// TestTamperedRevisionsAreNotRestored: spec.rollbackTo names a revision
// that someone else created or changed. It is refused with the reason,
// and nothing changes: no new revision, the installed version stays, the
// forged objects are not created.
func TestTamperedRevisionsAreNotRestored(t *testing.T) {
	tests := []struct {
		name string
		// tamper changes revision 1 of ns/signals (installed 1.0.0, then
		// upgraded to 1.1.0 as revision 2) and returns the revision
		// spec.rollbackTo names.
		tamper func(t *testing.T, ns string, rev1 *v1alpha1.Revision) int64
		want   func(ns string, rev1 *v1alpha1.Revision) string
	}{
		{
			name: "forged revision holding a ClusterRoleBinding",
			tamper: func(t *testing.T, ns string, rev1 *v1alpha1.Revision) int64 {
				where, digest, err := (&revision.Store{Client: env.Client}).StoreObjects(context.Background(), ns, forgedObjects(ns))
				if err != nil {
					t.Fatal(err)
				}
				forged := &v1alpha1.Revision{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signals-9", Labels: rev1.Labels},
					Spec: v1alpha1.RevisionSpec{Subscription: "signals", Revision: 9, Catalog: rev1.Spec.Catalog, Package: "signal-store",
						Version: "1.0.0", Bundle: rev1.Spec.Bundle, ContentDigest: digest, Objects: where, Reason: "Install"},
				}
				if err := env.Client.Create(context.Background(), forged); err != nil {
					t.Fatal(err)
				}
				forged.Status = v1alpha1.RevisionStatus{Outcome: v1alpha1.OutcomeHealthy}
				if err := env.Client.Status().Update(context.Background(), forged); err != nil {
					t.Fatal(err)
				}
				return 9
			},
			want: func(ns string, _ *v1alpha1.Revision) string {
				return "spec.rollbackTo names revision 9, which is refused: Revision " + ns + "/signals-9 is not trusted: the installer did not record it: status.revisionDigests of Subscription " + ns + "/signals has no revision 9"
			},
		},
		{
			name: "revision re-created with other objects",
			tamper: func(t *testing.T, ns string, rev1 *v1alpha1.Revision) int64 {
				where, digest, err := (&revision.Store{Client: env.Client}).StoreObjects(context.Background(), ns, forgedObjects(ns))
				if err != nil {
					t.Fatal(err)
				}
				recreate(t, rev1, func(s *v1alpha1.RevisionSpec) { s.ContentDigest, s.Objects = digest, where })
				return 1
			},
			want: func(ns string, rev1 *v1alpha1.Revision) string {
				return "Revision " + ns + "/signals-1 is not trusted: its spec.contentDigest sha256:"
			},
		},
		{
			name: "blob replaced by a gzip bomb",
			tamper: func(t *testing.T, ns string, rev1 *v1alpha1.Revision) int64 {
				name := rev1.Spec.Objects.Blobs[0]
				if err := env.Client.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
					t.Fatal(err)
				}
				bomb := blobSecret(ns, gzipBomb(t))
				bomb.Name = name
				if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
					err := env.Client.Create(ctx, bomb)
					return err == nil, client.IgnoreAlreadyExists(err)
				}); err != nil {
					t.Fatal(err)
				}
				return 1
			},
			want: func(ns string, rev1 *v1alpha1.Revision) string {
				return "Revision " + ns + "/signals-1 is not trusted: Secret " + ns + "/" + rev1.Spec.Objects.Blobs[0] + " no longer holds the content its name was derived from (replaced or edited)"
			},
		},
		{
			name: "revision re-created to name a gzip bomb",
			tamper: func(t *testing.T, ns string, rev1 *v1alpha1.Revision) int64 {
				bomb := blobSecret(ns, gzipBomb(t))
				if err := env.Client.Create(context.Background(), bomb); err != nil {
					t.Fatal(err)
				}
				recreate(t, rev1, func(s *v1alpha1.RevisionSpec) { s.Objects.Blobs = []string{bomb.Name} })
				return 1
			},
			want: func(ns string, _ *v1alpha1.Revision) string {
				return "Revision " + ns + "/signals-1 is not trusted: objects decompress to more than 134217728 bytes, the most a revision may hold"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, ns, cat := setup(t, sampleDir(t), nil)
			create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.0.0"})
			sub := waitSub(t, c, ns, "signals", "upgraded to 1.1.0", func(s *v1alpha1.Subscription) bool {
				return installed("1.1.0")(s) && s.Status.CurrentRevision == 2
			})
			revs := revisionsOf(t, c, ns, "signals")
			history := outcomes(revs)
			var dep appsv1.Deployment
			if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "signal-store-controller-manager"}, &dep); err != nil {
				t.Fatal(err)
			}

			n := tt.tamper(t, ns, &revs[0])
			patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.RollbackTo = &v1alpha1.RollbackTarget{Revision: n} })
			sub = waitSub(t, c, ns, "signals", "refused the revision", func(s *v1alpha1.Subscription) bool {
				cond := condition(s, v1alpha1.TypeResolved)
				return cond != nil && cond.Reason == v1alpha1.ReasonRevisionUntrusted && cond.ObservedGeneration == s.Generation
			})
			msg := condition(sub, v1alpha1.TypeResolved).Message
			if want := tt.want(ns, &revs[0]); !strings.Contains(msg, want) {
				t.Errorf("Resolved message:\n%s\nwant it to contain:\n%s", msg, want)
			}
			if sub.Status.CurrentRevision != 2 || sub.Status.InstalledVersion != "1.1.0" {
				t.Errorf("the refused rollback changed the Subscription: current revision %d, installed %s", sub.Status.CurrentRevision, sub.Status.InstalledVersion)
			}
			for _, r := range revisionsOf(t, c, ns, "signals") {
				if r.Spec.Revision > 2 && r.Spec.Revision != n {
					t.Errorf("revision %d recorded by the refused rollback (history before: %s)", r.Spec.Revision, history)
				}
				if r.Spec.Revision == 2 && r.Status.Outcome != v1alpha1.OutcomeHealthy {
					t.Errorf("revision 2 is %s after the refused rollback", r.Status.Outcome)
				}
			}
			if err := c.Get(context.Background(), types.NamespacedName{Name: "forged-admin-" + ns}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
				t.Errorf("the forged ClusterRoleBinding exists: %v", err)
			}
			var after appsv1.Deployment
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(&dep), &after); err != nil || after.Generation != dep.Generation {
				t.Errorf("Deployment changed: generation %d (was %d), %v", after.Generation, dep.Generation, err)
			}
		})
	}
}

// TestDecompressionIsBounded: a gzip bomb is read no further than the bound.
func TestDecompressionIsBounded(t *testing.T) {
	_, err := revision.DecompressObjects(gzipBomb(t))
	if err == nil || !strings.Contains(err.Error(), "objects decompress to more than 134217728 bytes") {
		t.Fatalf("DecompressObjects(bomb) = %v", err)
	}
	if _, err := revision.DecompressObjects([]byte("not gzip")); err == nil || !strings.Contains(err.Error(), "objects are not gzip data") {
		t.Fatalf("DecompressObjects(garbage) = %v", err)
	}
}
