package revision

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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogd"
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
	// MaxObjectsBytes bounds a revision's objects as JSON, before
	// compression when recorded and after decompression when read back:
	// twice the largest bundle a catalog answer may carry
	// (catalogd.ClientMaxRecvMsgSize, 64 MiB), as the rendered RBAC and
	// Deployments are derived from the bundle's CSV. Reading stops at this
	// bound, so a blob that decompresses to more (a gzip bomb) costs no more
	// memory than that.
	MaxObjectsBytes = 2 * catalogd.ClientMaxRecvMsgSize
	// maxBlobs bounds the blobs one revision may name.
	maxBlobs = (MaxObjectsBytes + blobChunk - 1) / blobChunk
)

// SecretTypeBlob is the type of the Secrets holding revision objects.
const SecretTypeBlob corev1.SecretType = "operators.ferry.dev/revision-blob"

// Store reads and writes Subscriptions' revisions and their blobs.
type Store struct {
	// Client creates, updates and deletes revisions and blobs.
	Client client.Client
	// Reader reads blobs and revisions without the cache; Client when nil.
	Reader client.Reader
}

func (rv *Store) reader() client.Reader {
	if rv.Reader != nil {
		return rv.Reader
	}
	return rv.Client
}

// Target names the bundle a revision installs.
type Target struct {
	Catalog, Bundle, Version string
}

// Revision reasons (spec.reason).
const (
	ReasonInstall     = "Install"
	ReasonUpgrade     = "Upgrade"
	ReasonReconfigure = "Reconfigure"
	ReasonRollback    = "Rollback"
	ReasonDowngrade   = "Downgrade"
)

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
	if len(js) > MaxObjectsBytes {
		return nil, "", fmt.Errorf("the rendered objects take %d bytes as JSON, more than a revision may hold (%d)", len(js), MaxObjectsBytes)
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

// Digest is the content digest of rendered objects.
func Digest(objs []*unstructured.Unstructured) (string, error) {
	_, d, err := encodeObjects(objs)
	return d, err
}

// StoreObjects writes the objects' blobs (idempotently) and returns where they are.
func (rv *Store) StoreObjects(ctx context.Context, ns string, objs []*unstructured.Unstructured) (v1alpha1.RevisionObjects, string, error) {
	data, digest, err := encodeObjects(objs)
	if err != nil {
		return v1alpha1.RevisionObjects{}, "", err
	}
	out := v1alpha1.RevisionObjects{Count: int32(len(objs)), Size: int64(len(data))}
	for off := 0; off < len(data); off += blobChunk {
		chunk := data[off:min(off+blobChunk, len(data))]
		name := blobName(chunk)
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{LabelBlob: "true"}},
			Type:       SecretTypeBlob,
			Immutable:  ptr.To(true),
			Data:       map[string][]byte{blobKey: chunk},
		}
		if err := rv.Client.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return out, "", fmt.Errorf("storing revision objects in Secret %s/%s: %w", ns, name, err)
		}
		out.Blobs = append(out.Blobs, name)
	}
	return out, digest, nil
}

// blobName is the name of the Secret holding chunk: derived from its
// SHA-256, so that a Secret whose content was replaced is recognised.
func blobName(chunk []byte) string {
	sum := sha256.Sum256(chunk)
	return "ferry-blob-" + hex.EncodeToString(sum[:])[:40]
}

// UntrustedError means a Revision, or the blobs it names, cannot be
// used: the installer did not write it for this Subscription, or its content
// changed since. Nothing of it is applied.
type UntrustedError struct {
	// Namespace and Name name the Revision.
	Namespace, Name string
	// Reason says why it is not trusted.
	Reason string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("Revision %s/%s is not trusted: %s", e.Namespace, e.Name, e.Reason)
}

// TrustError says why rev cannot be used for sub, or returns nil. A
// Revision is trusted when its content digest is the one the installer
// recorded for its number in the Subscription's status, which only the
// installer writes; its labels and owner are not evidence, anyone allowed
// to create Revisions can forge them.
func TrustError(sub *v1alpha1.Subscription, rev *v1alpha1.Revision) error {
	untrusted := func(format string, args ...any) error {
		return &UntrustedError{Namespace: rev.Namespace, Name: rev.Name, Reason: fmt.Sprintf(format, args...)}
	}
	if rev.Namespace != sub.Namespace || rev.Spec.Subscription != sub.Name || rev.Name != Name(sub.Name, rev.Spec.Revision) {
		return untrusted("it is not revision %d of Subscription %s/%s (spec.subscription %q)", rev.Spec.Revision, sub.Namespace, sub.Name, rev.Spec.Subscription)
	}
	for _, d := range sub.Status.RevisionDigests {
		if d.Revision != rev.Spec.Revision {
			continue
		}
		if d.ContentDigest != rev.Spec.ContentDigest {
			return untrusted("its spec.contentDigest %s is not the digest the installer recorded for revision %d (%s, in the Subscription's status.revisionDigests)", rev.Spec.ContentDigest, rev.Spec.Revision, d.ContentDigest)
		}
		return nil
	}
	return untrusted("the installer did not record it: status.revisionDigests of Subscription %s/%s has no revision %d", sub.Namespace, sub.Name, rev.Spec.Revision)
}

// RecordDigest notes, in the Subscription's status, the content digest of
// revision n, replacing an earlier note for the same number.
func RecordDigest(sub *v1alpha1.Subscription, n int64, digest string) {
	for i := range sub.Status.RevisionDigests {
		if sub.Status.RevisionDigests[i].Revision == n {
			sub.Status.RevisionDigests[i].ContentDigest = digest
			return
		}
	}
	sub.Status.RevisionDigests = append(sub.Status.RevisionDigests, v1alpha1.RevisionDigest{Revision: n, ContentDigest: digest})
}

// Load reads a trusted revision's objects back: the revision must be
// trusted (trustError), every blob must be a revision blob Secret whose
// content still hashes to its name, the compressed and decompressed sizes
// are bounded by MaxObjectsBytes, and the objects must have the
// recorded digest. They are then checked as rendered content is
// (install.CheckRestored) and put in the Subscription's namespace.
func (rv *Store) Load(ctx context.Context, sub *v1alpha1.Subscription, rev *v1alpha1.Revision) ([]*unstructured.Unstructured, error) {
	if err := TrustError(sub, rev); err != nil {
		return nil, err
	}
	untrusted := func(format string, args ...any) error {
		return &UntrustedError{Namespace: rev.Namespace, Name: rev.Name, Reason: fmt.Sprintf(format, args...)}
	}
	if n := len(rev.Spec.Objects.Blobs); n == 0 || n > maxBlobs {
		return nil, untrusted("it names %d blobs; a revision has 1 to %d", n, maxBlobs)
	}
	var data []byte
	for _, name := range rev.Spec.Objects.Blobs {
		s := &corev1.Secret{}
		if err := rv.reader().Get(ctx, types.NamespacedName{Namespace: rev.Namespace, Name: name}, s); err != nil {
			return nil, fmt.Errorf("revision %d: reading objects from Secret %s: %w", rev.Spec.Revision, name, err)
		}
		chunk := s.Data[blobKey]
		if s.Type != SecretTypeBlob {
			return nil, untrusted("Secret %s/%s has type %q, not %s", s.Namespace, name, s.Type, SecretTypeBlob)
		}
		if blobName(chunk) != name {
			return nil, untrusted("Secret %s/%s no longer holds the content its name was derived from (replaced or edited)", s.Namespace, name)
		}
		if len(data)+len(chunk) > MaxObjectsBytes {
			return nil, untrusted("its blobs hold more than %d bytes", MaxObjectsBytes)
		}
		data = append(data, chunk...)
	}
	js, err := DecompressObjects(data)
	if err != nil {
		return nil, untrusted("%v", err)
	}
	sum := sha256.Sum256(js)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != rev.Spec.ContentDigest {
		return nil, untrusted("its objects have digest %s, not the recorded %s", got, rev.Spec.ContentDigest)
	}
	var raw []map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("revision %d: objects: %w", rev.Spec.Revision, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(raw))
	for _, o := range raw {
		out = append(out, &unstructured.Unstructured{Object: o})
	}
	if err := install.CheckRestored(out, sub.Namespace); err != nil {
		return nil, fmt.Errorf("revision %d: %w", rev.Spec.Revision, err)
	}
	return out, nil
}

// DecompressObjects gunzips a revision's objects, reading at most
// MaxObjectsBytes of output.
func DecompressObjects(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("objects are not gzip data: %w", err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, MaxObjectsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing objects: %w", err)
	}
	if len(js) > MaxObjectsBytes {
		return nil, fmt.Errorf("objects decompress to more than %d bytes, the most a revision may hold", MaxObjectsBytes)
	}
	return js, nil
}

// List returns a Subscription's trusted revisions (see trustError), oldest
// first. Others are left out: they are never applied, restored, reused nor
// counted as a failure or a success.
func (rv *Store) List(ctx context.Context, sub *v1alpha1.Subscription) ([]v1alpha1.Revision, error) {
	all, err := rv.ListAll(ctx, sub)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for i := range all {
		if TrustError(sub, &all[i]) == nil {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// ListAll returns every Revision that names the Subscription, trusted or
// not, oldest first.
func (rv *Store) ListAll(ctx context.Context, sub *v1alpha1.Subscription) ([]v1alpha1.Revision, error) {
	var list v1alpha1.RevisionList
	if err := rv.reader().List(ctx, &list, client.InNamespace(sub.Namespace), client.MatchingLabels{LabelSubscription: install.LabelValue(sub.Name)}); err != nil {
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

// Get returns revision n of a Subscription, or nil.
func (rv *Store) Get(ctx context.Context, sub *v1alpha1.Subscription, n int64) (*v1alpha1.Revision, error) {
	if n == 0 {
		return nil, nil
	}
	rev := &v1alpha1.Revision{}
	err := rv.reader().Get(ctx, types.NamespacedName{Namespace: sub.Namespace, Name: Name(sub.Name, n)}, rev)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return rev, err
}

// Name is the name of revision n of Subscription sub.
func Name(sub string, n int64) string { return sub + "-" + strconv.FormatInt(n, 10) }

// New is what Create records.
type New struct {
	// Target is the bundle the revision installs.
	Target Target
	// Objects are the rendered objects, as recorded.
	Objects []*unstructured.Unstructured
	// Reason is one of the Reason constants.
	Reason string
	// RollbackOf is the revision whose objects are restored, or 0.
	RollbackOf int64
}

// Create records a new revision with outcome Progressing. When the newest
// revision already holds the same content, is trusted and is progressing or
// healthy (the installer stopped between recording it and writing the
// Subscription's status), that one is reused. The revision's digest is
// written to the Subscription's status (with persist) before the Revision
// is created, so that a revision the installer wrote is always trusted, even
// after a crash between the two writes.
func (rv *Store) Create(ctx context.Context, sub *v1alpha1.Subscription, nr New, persist func() error) (*v1alpha1.Revision, error) {
	objs, digest, err := rv.StoreObjects(ctx, sub.Namespace, nr.Objects)
	if err != nil {
		return nil, err
	}
	all, err := rv.ListAll(ctx, sub)
	if err != nil {
		return nil, err
	}
	next := int64(1)
	if len(all) > 0 {
		last := all[len(all)-1]
		if last.Spec.ContentDigest == digest && TrustError(sub, &last) == nil && (last.Status.Outcome == v1alpha1.OutcomeProgressing || last.Status.Outcome == v1alpha1.OutcomeHealthy || last.Status.Outcome == "") {
			if last.Status.Outcome == "" {
				now := metav1.Now()
				last.Status = v1alpha1.RevisionStatus{Outcome: v1alpha1.OutcomeProgressing, StartedAt: &now, Message: "recorded; applied next, then the health gate"}
				if err := rv.Client.Status().Update(ctx, &last); err != nil {
					return nil, err
				}
			}
			return &last, nil
		}
		next = last.Spec.Revision + 1
	}
	RecordDigest(sub, next, digest)
	if err := persist(); err != nil {
		return nil, fmt.Errorf("recording the digest of revision %d: %w", next, err)
	}
	rev := &v1alpha1.Revision{
		ObjectMeta: metav1.ObjectMeta{
			Name: Name(sub.Name, next), Namespace: sub.Namespace,
			Labels: map[string]string{LabelSubscription: install.LabelValue(sub.Name), install.LabelManagedBy: install.ManagedByValue},
		},
		Spec: v1alpha1.RevisionSpec{
			Subscription: sub.Name, Revision: next, Catalog: nr.Target.Catalog, Package: sub.Spec.Package,
			Version: nr.Target.Version, Bundle: nr.Target.Bundle, ContentDigest: digest, Objects: objs,
			Reason: nr.Reason, RollbackOf: nr.RollbackOf,
		},
	}
	if err := rv.Client.Create(ctx, rev); err != nil {
		return nil, fmt.Errorf("recording revision %d: %w", next, err)
	}
	now := metav1.Now()
	rev.Status = v1alpha1.RevisionStatus{Outcome: v1alpha1.OutcomeProgressing, StartedAt: &now, Message: "recorded; applied next, then the health gate"}
	if err := rv.Client.Status().Update(ctx, rev); err != nil {
		return nil, fmt.Errorf("recording revision %d: %w", next, err)
	}
	for i := range all {
		if TrustError(sub, &all[i]) != nil {
			continue
		}
		if o := all[i].Status.Outcome; o == v1alpha1.OutcomeProgressing || o == "" {
			if err := rv.Finish(ctx, &all[i], v1alpha1.OutcomeSuperseded, fmt.Sprintf("replaced by revision %d before it became healthy", next)); err != nil {
				return nil, err
			}
		}
	}
	return rev, nil
}

// Finish records a revision's outcome once.
func (rv *Store) Finish(ctx context.Context, rev *v1alpha1.Revision, outcome v1alpha1.RevisionOutcome, msg string) error {
	if rev.Status.Outcome == outcome && rev.Status.Message == msg {
		return nil
	}
	now := metav1.Now()
	rev.Status.Outcome, rev.Status.Message, rev.Status.FinishedAt = outcome, truncate(msg, maxMessage), &now
	if rev.Status.StartedAt == nil {
		rev.Status.StartedAt = &rev.CreationTimestamp
	}
	return rv.Client.Status().Update(ctx, rev)
}

// Prune deletes the oldest revisions past limit, never the current one, the
// last healthy one or the one spec.rollbackTo names, then the blobs no
// revision in the namespace uses.
func (rv *Store) Prune(ctx context.Context, sub *v1alpha1.Subscription, limit int) error {
	all, err := rv.List(ctx, sub)
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
		if err := rv.Client.Delete(ctx, &r); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		excess--
	}
	return rv.CollectBlobs(ctx, sub.Namespace)
}

// ForgetDigests drops from the Subscription's status the digests of
// revisions that no longer exist, except those of the newest limit
// revision numbers: the entries stay bounded, while a revision being
// recorded, or one deleted by someone else, keeps its record. A record
// without its Revision is harmless: only content with that exact digest,
// the installer's own, would be accepted under that number.
func (rv *Store) ForgetDigests(ctx context.Context, sub *v1alpha1.Subscription, limit int) error {
	all, err := rv.List(ctx, sub)
	if err != nil {
		return err
	}
	exists := map[int64]bool{}
	var highest int64
	for _, r := range all {
		exists[r.Spec.Revision] = true
	}
	for _, d := range sub.Status.RevisionDigests {
		highest = max(highest, d.Revision)
	}
	kept := sub.Status.RevisionDigests[:0:0]
	for _, d := range sub.Status.RevisionDigests {
		if exists[d.Revision] || d.Revision > highest-int64(limit) {
			kept = append(kept, d)
		}
	}
	if len(kept) != len(sub.Status.RevisionDigests) {
		sub.Status.RevisionDigests = kept
	}
	return nil
}

// CollectBlobs deletes the blob Secrets of a namespace no Revision uses.
func (rv *Store) CollectBlobs(ctx context.Context, ns string) error {
	var revs v1alpha1.RevisionList
	if err := rv.reader().List(ctx, &revs, client.InNamespace(ns)); err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range revs.Items {
		for _, b := range r.Spec.Objects.Blobs {
			used[b] = true
		}
	}
	var blobs corev1.SecretList
	if err := rv.reader().List(ctx, &blobs, client.InNamespace(ns), client.MatchingLabels{LabelBlob: "true"}); err != nil {
		return err
	}
	for i := range blobs.Items {
		if !used[blobs.Items[i].Name] {
			if err := rv.Client.Delete(ctx, &blobs.Items[i]); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// DeleteAll removes every revision that names the Subscription, trusted or
// not, and unused blobs.
func (rv *Store) DeleteAll(ctx context.Context, sub *v1alpha1.Subscription) error {
	all, err := rv.ListAll(ctx, sub)
	if err != nil {
		return err
	}
	for i := range all {
		if err := rv.Client.Delete(ctx, &all[i]); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return rv.CollectBlobs(ctx, sub.Namespace)
}

// maxMessage bounds a revision's status message.
const maxMessage = 4096

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
