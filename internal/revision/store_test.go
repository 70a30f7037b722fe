package revision_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/revision"
)

// TestRevisionObjectsOfAMultiMegabyteBundle: objects far beyond the API
// server's object size limit are stored in several content-addressed blobs,
// each under the limit, stored once, and read back identical.
func TestRevisionObjectsOfAMultiMegabyteBundle(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	store := &revision.Store{Client: env.Client}
	// 6 MiB of data that does not compress: a hash chain in hex.
	var big []byte
	h := sha256.Sum256([]byte("seed"))
	for len(big) < 6<<20 {
		h = sha256.Sum256(h[:])
		big = append(big, hex.EncodeToString(h[:])...)
	}
	objs := []*unstructured.Unstructured{
		{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "big", "namespace": ns}, "data": map[string]any{"blob": string(big)}}},
		{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "sa", "namespace": ns}}},
	}
	where, digest, err := store.StoreObjects(ctx, ns, objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(where.Blobs) < 4 || where.Count != 2 {
		t.Fatalf("objects stored as %d blobs (%d objects), want several", len(where.Blobs), where.Count)
	}
	for _, name := range where.Blobs {
		s := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			t.Fatal(err)
		}
		if len(s.Data["data"]) > 1<<20 || s.Immutable == nil || !*s.Immutable {
			t.Errorf("blob %s: %d bytes, immutable %v", name, len(s.Data["data"]), s.Immutable)
		}
	}
	// Storing the same content again is a no-op.
	again, digest2, err := store.StoreObjects(ctx, ns, objs)
	if err != nil || digest2 != digest || !equality.Semantic.DeepEqual(again, where) {
		t.Fatalf("second store: %v, %s vs %s", err, digest2, digest)
	}
	rev := &v1alpha1.Revision{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x-1"}, Spec: v1alpha1.RevisionSpec{Subscription: "x", Revision: 1, ContentDigest: digest, Objects: where}}
	sub := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"},
		Status: v1alpha1.SubscriptionStatus{RevisionDigests: []v1alpha1.RevisionDigest{{Revision: 1, ContentDigest: digest}}}}
	back, err := store.Load(ctx, sub, rev)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || !equality.Semantic.DeepEqual(back[0].Object, objs[0].Object) {
		t.Fatal("objects read back differ")
	}
	// A damaged blob is detected.
	rev.Spec.ContentDigest = "sha256:0000"
	if _, err := store.Load(ctx, sub, rev); err == nil {
		t.Fatal("a digest mismatch went unnoticed")
	}
}
