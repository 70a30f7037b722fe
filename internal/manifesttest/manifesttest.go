package manifesttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one rendered manifest: its identity and its YAML.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	// Raw is the object's YAML document as rendered.
	Raw []byte `json:"-"`
}

func (o Object) String() string {
	if o.Metadata.Namespace == "" {
		return o.Kind + " " + o.Metadata.Name
	}
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Metadata.Namespace, o.Metadata.Name)
}

// Split splits data, a multi-document YAML stream named what in messages,
// into objects. Documents that hold nothing (blank or comments only) are
// left out; any other document is kept, even without a kind, so that a test
// can refuse it.
func Split(t testing.TB, what string, data []byte) []Object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: splitting YAML: %v", what, err)
		}
		var content any
		if err := yaml.Unmarshal(doc, &content); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, doc)
		}
		if content == nil {
			continue
		}
		var o Object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, doc)
		}
		o.Raw = doc
		out = append(out, o)
	}
	return out
}

// DecodeStrict unmarshals o into out, refusing unknown fields.
func DecodeStrict(t testing.TB, o Object, out any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.Raw, out); err != nil {
		t.Fatalf("%s does not parse as %T: %v", o, out, err)
	}
}

// Lookup returns the object of that kind and name, if rendered.
func Lookup(objs []Object, kind, name string) (Object, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return Object{}, false
}

// Find returns the object of that kind and name, failing the test when it
// was not rendered.
func Find(t testing.TB, objs []Object, kind, name string) Object {
	t.Helper()
	o, ok := Lookup(objs, kind, name)
	if !ok {
		t.Fatalf("no %s %q rendered", kind, name)
	}
	return o
}
