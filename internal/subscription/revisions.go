package subscription

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

// Revisions are read from the API server, never cached (get, list), created
// for every install, upgrade and rollback, deleted past the history limit,
// and their outcome is written with Status().Update. Their objects are kept
// in Secrets, read the same way, created once per content and deleted with
// the last revision using them.
//
// +kubebuilder:rbac:groups=operators.ferry.dev,resources=revisions,verbs=get;list;create;delete
// +kubebuilder:rbac:groups=operators.ferry.dev,resources=revisions/status,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;create;delete

// Revision storage: a Revision records what was applied; the rendered
// objects themselves are gzip-compressed JSON split into chunks, each kept
// in an immutable Secret named by the SHA-256 of its content. Identical
// chunks are stored once per namespace, whatever the number of revisions
// or Subscriptions using them, and a Revision stays a few hundred bytes even
// for a bundle of many megabytes. Secrets, not ConfigMaps, because bundles
// may ship Secrets.
const (
	// LabelSubscription on a Revision names its Subscription.
	LabelSubscription = "operators.ferry.dev/subscription"
	// LabelBlob marks the Secrets holding revision objects.
	LabelBlob = "operators.ferry.dev/revision-blob"
	blobKey   = "data"
	// blobChunk keeps each Secret well under the API server's 1.5 MiB limit.
	blobChunk = 768 << 10
	// DefaultRevisionHistoryLimit is how many Revisions are kept by default.
	DefaultRevisionHistoryLimit = 10
	// DefaultHealthTimeout is how long a revision may take to become healthy.
	DefaultHealthTimeout = 5 * time.Minute
)

// SecretTypeBlob is the type of the Secrets holding revision objects.
const SecretTypeBlob corev1.SecretType = "operators.ferry.dev/revision-blob"

// revisions reads and writes a Subscription's revisions.
type revisions struct {
	client client.Client
	// reader reads blobs and revisions without the cache.
	reader client.Reader
}

// encodeObjects serialises rendered objects: JSON, then gzip; digest is the
// SHA-256 of the JSON.
func encodeObjects(objs []*unstructured.Unstructured) (data []byte, digest string, err error) {
	raw := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		raw = append(raw, o.Object)
	}
	js, err := json.Marshal(raw)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(js)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(js); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ObjectsDigest is the content digest of rendered objects.
func ObjectsDigest(objs []*unstructured.Unstructured) (string, error) {
	_, d, err := encodeObjects(objs)
	return d, err
}

// store writes the objects' blobs (idempotently) and returns where they are.
func (rv *revisions) store(ctx context.Context, ns string, objs []*unstructured.Unstructured) (v1alpha1.RevisionObjects, string, error) {
	data, digest, err := encodeObjects(objs)
	if err != nil {
		return v1alpha1.RevisionObjects{}, "", err
	}
	out := v1alpha1.RevisionObjects{Count: int32(len(objs)), Size: int64(len(data))}
	for off := 0; off < len(data); off += blobChunk {
		chunk := data[off:min(off+blobChunk, len(data))]
		sum := sha256.Sum256(chunk)
		name := "ferry-blob-" + hex.EncodeToString(sum[:])[:40]
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{LabelBlob: "true"}},
			Type:       SecretTypeBlob,
			Immutable:  ptr.To(true),
			Data:       map[string][]byte{blobKey: chunk},
		}
		if err := rv.client.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return out, "", fmt.Errorf("storing revision objects in Secret %s/%s: %w", ns, name, err)
		}
		out.Blobs = append(out.Blobs, name)
	}
	return out, digest, nil
}

// load reads a revision's objects back.
func (rv *revisions) load(ctx context.Context, rev *v1alpha1.Revision) ([]*unstructured.Unstructured, error) {
	var data []byte
	for _, name := range rev.Spec.Objects.Blobs {
		s := &corev1.Secret{}
		if err := rv.reader.Get(ctx, types.NamespacedName{Namespace: rev.Namespace, Name: name}, s); err != nil {
			return nil, fmt.Errorf("revision %d: reading objects from Secret %s: %w", rev.Spec.Revision, name, err)
		}
		data = append(data, s.Data[blobKey]...)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("revision %d: objects: %w", rev.Spec.Revision, err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("revision %d: objects: %w", rev.Spec.Revision, err)
	}
	sum := sha256.Sum256(js)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != rev.Spec.ContentDigest {
		return nil, fmt.Errorf("revision %d: objects have digest %s, want %s", rev.Spec.Revision, got, rev.Spec.ContentDigest)
	}
	var raw []map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("revision %d: objects: %w", rev.Spec.Revision, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(raw))
	for _, o := range raw {
		out = append(out, &unstructured.Unstructured{Object: o})
	}
	return out, nil
}

// list returns a Subscription's revisions, oldest first.
func (rv *revisions) list(ctx context.Context, sub *v1alpha1.Subscription) ([]v1alpha1.Revision, error) {
	var list v1alpha1.RevisionList
	if err := rv.reader.List(ctx, &list, client.InNamespace(sub.Namespace), client.MatchingLabels{LabelSubscription: install.LabelValue(sub.Name)}); err != nil {
		return nil, err
	}
	items := list.Items[:0]
	for _, r := range list.Items {
		if r.Spec.Subscription == sub.Name {
			items = append(items, r)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Spec.Revision < items[j].Spec.Revision })
	return items, nil
}

// get returns revision n of a Subscription, or nil.
func (rv *revisions) get(ctx context.Context, sub *v1alpha1.Subscription, n int64) (*v1alpha1.Revision, error) {
	if n == 0 {
		return nil, nil
	}
	rev := &v1alpha1.Revision{}
	err := rv.reader.Get(ctx, types.NamespacedName{Namespace: sub.Namespace, Name: revisionName(sub.Name, n)}, rev)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return rev, err
}

func revisionName(sub string, n int64) string { return sub + "-" + strconv.FormatInt(n, 10) }

// newRevision is what create records.
type newRevision struct {
	target     revisionTarget
	objects    []*unstructured.Unstructured
	reason     string
	rollbackOf int64
}

// create records a new revision with outcome Progressing. When the newest
// revision already holds the same content and is progressing or healthy (the
// installer stopped between recording it and writing the Subscription's
// status), that one is reused.
func (rv *revisions) create(ctx context.Context, sub *v1alpha1.Subscription, nr newRevision) (*v1alpha1.Revision, error) {
	objs, digest, err := rv.store(ctx, sub.Namespace, nr.objects)
	if err != nil {
		return nil, err
	}
	all, err := rv.list(ctx, sub)
	if err != nil {
		return nil, err
	}
	next := int64(1)
	if len(all) > 0 {
		last := all[len(all)-1]
		if last.Spec.ContentDigest == digest && (last.Status.Outcome == v1alpha1.OutcomeProgressing || last.Status.Outcome == v1alpha1.OutcomeHealthy || last.Status.Outcome == "") {
			if last.Status.Outcome == "" {
				now := metav1.Now()
				last.Status = v1alpha1.RevisionStatus{Outcome: v1alpha1.OutcomeProgressing, StartedAt: &now, Message: "recorded; applied next, then the health gate"}
				if err := rv.client.Status().Update(ctx, &last); err != nil {
					return nil, err
				}
			}
			return &last, nil
		}
		next = last.Spec.Revision + 1
	}
	rev := &v1alpha1.Revision{
		ObjectMeta: metav1.ObjectMeta{
			Name: revisionName(sub.Name, next), Namespace: sub.Namespace,
			Labels: map[string]string{LabelSubscription: install.LabelValue(sub.Name), install.LabelManagedBy: install.ManagedByValue},
		},
		Spec: v1alpha1.RevisionSpec{
			Subscription: sub.Name, Revision: next, Catalog: nr.target.catalog, Package: sub.Spec.Package,
			Version: nr.target.version, Bundle: nr.target.bundle, ContentDigest: digest, Objects: objs,
			Reason: nr.reason, RollbackOf: nr.rollbackOf,
		},
	}
	if err := rv.client.Create(ctx, rev); err != nil {
		return nil, fmt.Errorf("recording revision %d: %w", next, err)
	}
	now := metav1.Now()
	rev.Status = v1alpha1.RevisionStatus{Outcome: v1alpha1.OutcomeProgressing, StartedAt: &now, Message: "recorded; applied next, then the health gate"}
	if err := rv.client.Status().Update(ctx, rev); err != nil {
		return nil, fmt.Errorf("recording revision %d: %w", next, err)
	}
	for i := range all {
		if o := all[i].Status.Outcome; o == v1alpha1.OutcomeProgressing || o == "" {
			if err := rv.finish(ctx, &all[i], v1alpha1.OutcomeSuperseded, fmt.Sprintf("replaced by revision %d before it became healthy", next)); err != nil {
				return nil, err
			}
		}
	}
	return rev, nil
}

// finish records a revision's outcome once.
func (rv *revisions) finish(ctx context.Context, rev *v1alpha1.Revision, outcome v1alpha1.RevisionOutcome, msg string) error {
	if rev.Status.Outcome == outcome && rev.Status.Message == msg {
		return nil
	}
	now := metav1.Now()
	rev.Status.Outcome, rev.Status.Message, rev.Status.FinishedAt = outcome, truncate(msg, 4096), &now
	if rev.Status.StartedAt == nil {
		rev.Status.StartedAt = &rev.CreationTimestamp
	}
	return rv.client.Status().Update(ctx, rev)
}

// prune deletes the oldest revisions past limit, never the current one, the
// last healthy one or the one spec.rollbackTo names, then the blobs no
// revision in the namespace uses.
func (rv *revisions) prune(ctx context.Context, sub *v1alpha1.Subscription, limit int) error {
	all, err := rv.list(ctx, sub)
	if err != nil || len(all) <= limit {
		return err
	}
	var lastHealthy int64
	for _, r := range all {
		if r.Status.Outcome == v1alpha1.OutcomeHealthy {
			lastHealthy = r.Spec.Revision
		}
	}
	excess := len(all) - limit
	for i := 0; i < len(all) && excess > 0; i++ {
		r := all[i]
		pinned := sub.Spec.RollbackTo != nil && sub.Spec.RollbackTo.Revision == r.Spec.Revision
		if r.Spec.Revision == sub.Status.CurrentRevision || r.Spec.Revision == lastHealthy || pinned {
			continue
		}
		if err := rv.client.Delete(ctx, &r); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		excess--
	}
	return rv.collectBlobs(ctx, sub.Namespace)
}

// collectBlobs deletes the blob Secrets of a namespace no Revision uses.
func (rv *revisions) collectBlobs(ctx context.Context, ns string) error {
	var revs v1alpha1.RevisionList
	if err := rv.reader.List(ctx, &revs, client.InNamespace(ns)); err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range revs.Items {
		for _, b := range r.Spec.Objects.Blobs {
			used[b] = true
		}
	}
	var blobs corev1.SecretList
	if err := rv.reader.List(ctx, &blobs, client.InNamespace(ns), client.MatchingLabels{LabelBlob: "true"}); err != nil {
		return err
	}
	for i := range blobs.Items {
		if !used[blobs.Items[i].Name] {
			if err := rv.client.Delete(ctx, &blobs.Items[i]); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// deleteAll removes every revision of a Subscription and unused blobs.
func (rv *revisions) deleteAll(ctx context.Context, sub *v1alpha1.Subscription) error {
	all, err := rv.list(ctx, sub)
	if err != nil {
		return err
	}
	for i := range all {
		if err := rv.client.Delete(ctx, &all[i]); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return rv.collectBlobs(ctx, sub.Namespace)
}
