package ociimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ImageOnlyCatalog copies a file-based catalog JSON stream from r to w.
// Every olm.bundle for which imageOf returns a reference gets that image
// and loses its olm.bundle.object properties: the catalog then lists the
// bundle by image only, as catalogs built by opm from bundle images do.
// The other documents are copied unchanged.
func ImageOnlyCatalog(w io.Writer, r io.Reader, imageOf func(pkg, bundle string) string) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := 1; ; i++ {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if doc["schema"] == "olm.bundle" {
			pkg, _ := doc["package"].(string)
			name, _ := doc["name"].(string)
			if image := imageOf(pkg, name); image != "" {
				doc["image"] = image
				props, _ := doc["properties"].([]any)
				kept := props[:0]
				for _, p := range props {
					if m, ok := p.(map[string]any); ok && m["type"] == "olm.bundle.object" {
						continue
					}
					kept = append(kept, p)
				}
				doc["properties"] = kept
			}
		}
		if err := enc.Encode(doc); err != nil {
			return err
		}
	}
}
