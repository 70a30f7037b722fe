package subscription

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// StoreObjects and LoadObjects expose the revision blob store to tests.
func StoreObjects(ctx context.Context, c client.Client, ns string, objs []*unstructured.Unstructured) (v1alpha1.RevisionObjects, string, error) {
	return (&revisions{client: c, reader: c}).store(ctx, ns, objs)
}

func LoadObjects(ctx context.Context, c client.Client, sub *v1alpha1.Subscription, rev *v1alpha1.Revision) ([]*unstructured.Unstructured, error) {
	return (&revisions{client: c, reader: c}).load(ctx, sub, rev)
}

// DecompressObjects exposes the bounded decompression of revision objects.
var DecompressObjects = decompressObjects
