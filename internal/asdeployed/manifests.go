package asdeployed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// MaxManifestBytes bounds the rendered manifests Parse reads (Ferry's own
// render is about 100 KiB).
const MaxManifestBytes = 16 << 20

// maxDocumentBytes bounds one YAML document.
const maxDocumentBytes = 4 << 20

// Manifests are parsed Kubernetes objects in document order.
type Manifests struct {
	// Objects are the documents that hold an object; empty documents and
	// comments-only documents are left out. List kinds are expanded.
	Objects []*unstructured.Unstructured
}

// ParseError names the document that could not be read.
type ParseError struct {
	// Document is the 1-based position of the document in the input.
	Document int
	// Err says why.
	Err error
}

func (e *ParseError) Error() string { return fmt.Sprintf("document %d: %v", e.Document, e.Err) }

func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads multi-document YAML. Every document must be an object with
// apiVersion, kind and metadata.name, or a List of such objects.
func Parse(r io.Reader) (*Manifests, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("manifests exceed %d bytes", MaxManifestBytes)
	}
	yr := utilyaml.NewYAMLReader(bufio.NewReaderSize(bytes.NewReader(data), 64<<10))
	m := &Manifests{}
	for doc := 1; ; doc++ {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &ParseError{Document: doc, Err: err}
		}
		if len(raw) > maxDocumentBytes {
			return nil, &ParseError{Document: doc, Err: fmt.Errorf("document exceeds %d bytes", maxDocumentBytes)}
		}
		var obj map[string]any
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			return nil, &ParseError{Document: doc, Err: err}
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, &ParseError{Document: doc, Err: err}
			}
			for i := range list.Items {
				if err := check(&list.Items[i]); err != nil {
					return nil, &ParseError{Document: doc, Err: fmt.Errorf("item %d: %w", i, err)}
				}
				m.Objects = append(m.Objects, &list.Items[i])
			}
			continue
		}
		if err := check(u); err != nil {
			return nil, &ParseError{Document: doc, Err: err}
		}
		m.Objects = append(m.Objects, u)
	}
	if len(m.Objects) == 0 {
		return nil, errors.New("manifests hold no object")
	}
	return m, nil
}

func check(u *unstructured.Unstructured) error {
	switch {
	case u.GetAPIVersion() == "":
		return errors.New("apiVersion is missing")
	case u.GetKind() == "":
		return errors.New("kind is missing")
	case u.GetName() == "":
		return fmt.Errorf("%s: metadata.name is missing", u.GetKind())
	}
	return nil
}

// Find returns the object of the kind (and API group, "" for core) with
// the namespace and name.
func (m *Manifests) Find(group, kind, namespace, name string) (*unstructured.Unstructured, error) {
	for _, o := range m.Objects {
		gvk := o.GroupVersionKind()
		if gvk.Group == group && gvk.Kind == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o, nil
		}
	}
	return nil, &NotFoundError{Group: group, Kind: kind, Namespace: namespace, Name: name}
}

// NotFoundError says that the manifests lack an object.
type NotFoundError struct{ Group, Kind, Namespace, Name string }

func (e *NotFoundError) Error() string {
	gk := e.Kind
	if e.Group != "" {
		gk += "." + e.Group
	}
	if e.Namespace != "" {
		return fmt.Sprintf("the manifests have no %s %s/%s", gk, e.Namespace, e.Name)
	}
	return fmt.Sprintf("the manifests have no %s %s", gk, e.Name)
}

// Subject is a ServiceAccount a binding names.
type Subject struct{ Namespace, Name string }

// BoundServiceAccounts returns the ServiceAccounts that the
// ClusterRoleBindings among the manifests bind to the ClusterRole name.
func (m *Manifests) BoundServiceAccounts(clusterRole string) ([]Subject, error) {
	var out []Subject
	for _, o := range m.Objects {
		gvk := o.GroupVersionKind()
		if gvk.Group != "rbac.authorization.k8s.io" || gvk.Kind != "ClusterRoleBinding" {
			continue
		}
		var b rbacv1.ClusterRoleBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
			return nil, fmt.Errorf("%s: %w", describe(o), err)
		}
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != clusterRole {
			continue
		}
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind {
				out = append(out, Subject{Namespace: s.Namespace, Name: s.Name})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ClusterRoleBinding among the manifests binds ClusterRole %s to a ServiceAccount", clusterRole)
	}
	return out, nil
}
