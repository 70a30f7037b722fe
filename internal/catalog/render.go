package catalog

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// Render writes the catalog as a file-based catalog: for each package its
// olm.package, olm.channel and olm.bundle documents (manifests inlined as
// olm.bundle.object), then olm.deprecations, as a stream of indented JSON.
func Render(w io.Writer, c *Catalog) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	enc.SetEscapeHTML(false)
	for _, p := range c.Packages {
		if err := enc.Encode(fbcPackage{Schema: SchemaPackage, Name: p.Name, DefaultChannel: p.DefaultChannel, Description: p.Description, Icon: p.Icon}); err != nil {
			return err
		}
		for _, ch := range p.Channels {
			doc := fbcChannel{Schema: SchemaChannel, Package: p.Name, Name: ch.Name, Properties: ch.Properties}
			for _, e := range ch.Entries {
				doc.Entries = append(doc.Entries, *e)
			}
			if err := enc.Encode(doc); err != nil {
				return err
			}
		}
		var deps fbcDeprecations
		if p.Deprecation != nil {
			deps.add(SchemaPackage, "", p.Deprecation)
		}
		for _, ch := range p.Channels {
			if ch.Deprecation != nil {
				deps.add(SchemaChannel, ch.Name, ch.Deprecation)
			}
		}
		for _, b := range p.Bundles {
			doc := fbcBundle{Schema: SchemaBundle, Package: p.Name, Name: b.Name, Image: b.Image, RelatedImages: b.RelatedImages}
			doc.Properties = append(doc.Properties, b.Properties...)
			ms, err := b.Manifests()
			if err != nil {
				return fmt.Errorf("bundle %s: %w", b.Name, err)
			}
			for _, m := range ms {
				v, _ := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(m.JSON)})
				doc.Properties = append(doc.Properties, Property{Type: PropertyBundleObject, Value: v})
			}
			if err := enc.Encode(doc); err != nil {
				return err
			}
			if b.Deprecation != nil {
				deps.add(SchemaBundle, b.Name, b.Deprecation)
			}
		}
		if len(deps.Entries) > 0 {
			deps.Schema, deps.Package = SchemaDeprecations, p.Name
			if err := enc.Encode(deps); err != nil {
				return err
			}
		}
	}
	for _, o := range c.Others {
		if _, err := w.Write(append(o.Blob, '\n')); err != nil {
			return err
		}
	}
	return nil
}

type fbcPackage struct {
	Schema         string `json:"schema"`
	Name           string `json:"name"`
	DefaultChannel string `json:"defaultChannel"`
	Description    string `json:"description,omitempty"`
	Icon           *Icon  `json:"icon,omitempty"`
}

type fbcChannel struct {
	Schema     string         `json:"schema"`
	Package    string         `json:"package"`
	Name       string         `json:"name"`
	Entries    []ChannelEntry `json:"entries"`
	Properties []Property     `json:"properties,omitempty"`
}

type fbcBundle struct {
	Schema        string         `json:"schema"`
	Package       string         `json:"package"`
	Name          string         `json:"name"`
	Image         string         `json:"image"`
	Properties    []Property     `json:"properties"`
	RelatedImages []RelatedImage `json:"relatedImages,omitempty"`
}

type fbcDeprecations struct {
	Schema  string            `json:"schema"`
	Package string            `json:"package"`
	Entries []deprecationItem `json:"entries"`
}

func (d *fbcDeprecations) add(schema, name string, dep *Deprecation) {
	var it deprecationItem
	it.Reference.Schema, it.Reference.Name, it.Message = schema, name, dep.Message
	d.Entries = append(d.Entries, it)
}
