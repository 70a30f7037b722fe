package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	formatTable = ""
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputFormats lists the values of -o.
var outputFormats = []string{formatJSON, formatYAML}

// maxMessageWidth bounds a message in a table cell; -o json|yaml and status
// show it whole.
const maxMessageWidth = 100

// addOutputFlag adds -o json|yaml to cmd.
func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", formatTable, "output format: json or yaml (default: a table for people)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
}

// checkFormat refuses an unknown -o value.
func checkFormat(f string) error {
	switch f {
	case formatTable, formatJSON, formatYAML:
		return nil
	}
	return fmt.Errorf("--output %q: unknown format (want %s)", f, strings.Join(outputFormats, " or "))
}

// printData writes v as JSON or YAML.
func printData(w io.Writer, format string, v any) error {
	switch format {
	case formatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case formatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return checkFormat(format)
}

// withKind sets the apiVersion and kind of API objects, which typed reads
// leave empty, so that -o json|yaml prints whole objects.
func withKind(s *runtime.Scheme, objs ...runtime.Object) {
	for _, o := range objs {
		gvks, _, err := s.ObjectKinds(o)
		if err == nil && len(gvks) > 0 {
			o.GetObjectKind().SetGroupVersionKind(gvks[0])
		}
	}
}

// listKind is the list kind of a kind, e.g. SubscriptionList.
func listKind(gv schema.GroupVersion, kind string) schema.GroupVersionKind {
	return gv.WithKind(kind + "List")
}

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		cells[i] = strings.ReplaceAll(strings.ReplaceAll(cells[i], "\t", " "), "\n", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// clip shortens s to n runes for a table cell.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
