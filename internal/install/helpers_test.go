package install_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
)

const lighthouse = "lighthouse-operator"

var (
	catOnce sync.Once
	cat     *catalog.Catalog
	catErr  error
)

// manifests returns a copy of the manifests of a sample bundle.
func manifests(t *testing.T, pkg, version string) []catalog.Manifest {
	t.Helper()
	catOnce.Do(func() {
		cat, catErr = catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	})
	if catErr != nil {
		t.Fatalf("loading sample bundles: %v", catErr)
	}
	b := cat.Bundle(pkg, fmt.Sprintf("%s.v%s", pkg, version))
	if b == nil {
		t.Fatalf("sample bundle %s %s not found", pkg, version)
	}
	ms, err := b.Manifests()
	if err != nil {
		t.Fatalf("reading manifests of %s %s: %v", pkg, version, err)
	}
	out := make([]catalog.Manifest, len(ms))
	for i, m := range ms {
		out[i] = m
		out[i].JSON = append(json.RawMessage(nil), m.JSON...)
	}
	return out
}

// input is the Input for a sample bundle installed by Subscription ns/sub.
func input(t *testing.T, ns, pkg, version string) install.Input {
	t.Helper()
	return install.Input{
		Owner:     types.NamespacedName{Namespace: ns, Name: "sub"},
		Namespace: ns,
		Package:   pkg,
		Version:   version,
		Bundle:    fmt.Sprintf("%s.v%s", pkg, version),
		Manifests: manifests(t, pkg, version),
	}
}

// editCSV rewrites the CSV of ms with edit.
func editCSV(t *testing.T, ms []catalog.Manifest, edit func(csv map[string]any)) []catalog.Manifest {
	t.Helper()
	for i, m := range ms {
		if m.Kind != catalog.KindClusterServiceVersion {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(m.JSON, &obj); err != nil {
			t.Fatal(err)
		}
		edit(obj)
		js, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		ms[i].JSON = js
		return ms
	}
	t.Fatal("no CSV among the manifests")
	return nil
}

// without drops the manifests of the given kind.
func without(ms []catalog.Manifest, kind string) []catalog.Manifest {
	var out []catalog.Manifest
	for _, m := range ms {
		if m.Kind != kind {
			out = append(out, m)
		}
	}
	return out
}

func manifest(t *testing.T, obj map[string]any) catalog.Manifest {
	t.Helper()
	js, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := unstructured.Unstructured{Object: obj}
	return catalog.Manifest{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName(), JSON: js}
}

// objectSet lists rendered objects as "Kind ns/name" in order.
func objectSet(r *install.Rendered) []string {
	out := make([]string, len(r.Objects))
	for i, o := range r.Objects {
		if o.GetNamespace() == "" {
			out[i] = o.GetKind() + " " + o.GetName()
		} else {
			out[i] = o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
		}
	}
	return out
}

// matchSet checks got against patterns in which "<hash>" stands for the
// 10-character hash of generated names.
func matchSet(t *testing.T, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(want[i]), "<hash>", "[0-9a-f]{10}") + "$"
		ok = regexp.MustCompile(re).MatchString(got[i])
	}
	if !ok {
		t.Fatalf("rendered objects:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func find(t *testing.T, r *install.Rendered, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range r.Objects {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func findAll(r *install.Rendered, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.Objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func render(t *testing.T, in install.Input) *install.Rendered {
	t.Helper()
	r, err := install.Render(in)
	if err != nil {
		t.Fatalf("Render(%s): %v", in.Bundle, err)
	}
	return r
}

func labelSet(l map[string]string) labels.Set { return labels.Set(l) }
