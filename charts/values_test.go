package charts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// schemaNode is the part of a JSON schema the test walks.
type schemaNode struct {
	Properties map[string]*schemaNode `json:"properties"`
}

// TestEveryValueIsDocumented: every value of values.yaml — every key the
// schema does not split further into properties — carries a "# --"
// comment saying what it does, and every key is in values.schema.json.
func TestEveryValueIsDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema schemaNode
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	data, err = os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatal("values.yaml is not a mapping")
	}
	leaves := 0
	var walk func(path string, s *schemaNode, m *yaml.Node)
	walk = func(path string, s *schemaNode, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, value := m.Content[i], m.Content[i+1]
			p := strings.TrimPrefix(path+"."+key.Value, ".")
			sub, ok := s.Properties[key.Value]
			switch {
			case !ok:
				t.Errorf("values.yaml:%d: %s is not in values.schema.json", key.Line, p)
			case len(sub.Properties) > 0 && value.Kind == yaml.MappingNode:
				walk(p, sub, value)
			default:
				leaves++
				if !strings.HasPrefix(key.HeadComment, "# -- ") {
					t.Errorf("values.yaml:%d: %s has no \"# -- \" comment saying what it does", key.Line, p)
				}
			}
		}
	}
	walk("", &schema, doc.Content[0])
	if leaves == 0 {
		t.Fatal("no values found")
	}
}
