package v1alpha1

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestConditionsRegistered checks that every Type* and Reason* constant of
// conditions.go is listed in ConditionTypes or ConditionReasons, once.
func TestConditionsRegistered(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "conditions.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var types, reasons []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				switch {
				case strings.HasPrefix(name.Name, "Type"):
					types = append(types, v)
				case strings.HasPrefix(name.Name, "Reason"):
					reasons = append(reasons, v)
				}
			}
		}
	}
	check := func(kind string, declared, registered []string) {
		slices.Sort(declared)
		got := slices.Clone(registered)
		slices.Sort(got)
		if !slices.Equal(declared, got) {
			t.Errorf("%s: declared %v, registered %v", kind, declared, got)
		}
	}
	check("condition types", types, ConditionTypes)
	check("condition reasons", reasons, ConditionReasons)
}
