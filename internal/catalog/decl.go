package catalog

import (
	"crypto/sha256"
	"encoding/json"
)

// declConfig is the flat list of documents both formats are turned into
// before the model is built and validated.
type declConfig struct {
	packages     []*declPackage
	channels     []*declChannel
	bundles      []*declBundle
	deprecations []*declDeprecations
	others       []Meta
}

func (d *declConfig) merge(o *declConfig) {
	d.packages = append(d.packages, o.packages...)
	d.channels = append(d.channels, o.channels...)
	d.bundles = append(d.bundles, o.bundles...)
	d.deprecations = append(d.deprecations, o.deprecations...)
	d.others = append(d.others, o.others...)
}

type declPackage struct {
	Name           string `json:"name"`
	DefaultChannel string `json:"defaultChannel"`
	Description    string `json:"description,omitempty"`
	Icon           *Icon  `json:"icon,omitempty"`
	src            string
	field          string
	sum            [sha256.Size]byte
}

type declChannel struct {
	Package    string         `json:"package"`
	Name       string         `json:"name"`
	Entries    []ChannelEntry `json:"entries"`
	Properties []Property     `json:"properties,omitempty"`
	src        string
	field      string
}

type declBundle struct {
	Package       string
	Name          string
	Image         string
	Properties    []Property
	RelatedImages []RelatedImage
	manifests     manifestSource
	csvMetadata   json.RawMessage
	src           string
	field         string
	sum           [sha256.Size]byte
	// manifestsDigest is ManifestsDigest of the manifests.
	manifestsDigest string
	// built is the bundle build made of this document, if any.
	built *Bundle
}

type declDeprecations struct {
	Package string            `json:"package"`
	Entries []deprecationItem `json:"entries"`
	src     string
	field   string
}

type deprecationItem struct {
	Reference struct {
		Schema string `json:"schema"`
		Name   string `json:"name,omitempty"`
	} `json:"reference"`
	Message string `json:"message"`
}
