package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CatalogSourceSpec says where a catalog is served.
type CatalogSourceSpec struct {
	// address is the host:port of a catalogd gRPC endpoint, for example
	// "catalogd.ferry-system.svc:50051".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^:/ ]+:[0-9]{1,5}$')",message="address must be host:port"
	// +required
	Address string `json:"address"`

	// priority orders catalogs that offer the same package: higher wins.
	// Subscriptions that name a catalog are not affected.
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=-100
	// +kubebuilder:validation:Maximum=100
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// displayName is a human-readable name shown by tools.
	// +kubebuilder:validation:MaxLength=100
	// +optional
	DisplayName string `json:"displayName,omitempty"`
}

// CatalogSourceStatus is what the installer last saw of the catalog.
type CatalogSourceStatus struct {
	// digest identifies the content of the catalog being served
	// ("sha256:<hex>"); it changes whenever the catalog does.
	// +optional
	Digest string `json:"digest,omitempty"`

	// lastUpdated is when the installer last received a new digest.
	// +optional
	LastUpdated *metav1.Time `json:"lastUpdated,omitempty"`

	// packages is the number of packages in the catalog.
	// +optional
	Packages int32 `json:"packages,omitempty"`

	// channels is the number of channels in the catalog.
	// +optional
	Channels int32 `json:"channels,omitempty"`

	// bundles is the number of bundles in the catalog.
	// +optional
	Bundles int32 `json:"bundles,omitempty"`

	// conditions: Connected says whether the installer currently follows the
	// catalog; when it is False, the last good content is still used.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CatalogSource points the installer at a catalogd. It is cluster-scoped:
// Subscriptions in every namespace can use it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=catsrc;catalogs
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Connected",type=string,JSONPath=`.status.conditions[?(@.type=="Connected")].status`
// +kubebuilder:printcolumn:name="Packages",type=integer,JSONPath=`.status.packages`
// +kubebuilder:printcolumn:name="Bundles",type=integer,JSONPath=`.status.bundles`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CatalogSource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says where the catalog is served.
	// +required
	Spec CatalogSourceSpec `json:"spec"`

	// status is what the installer last saw of the catalog.
	// +optional
	Status CatalogSourceStatus `json:"status,omitempty"`
}

// CatalogSourceList is a list of CatalogSources.
//
// +kubebuilder:object:root=true
type CatalogSourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CatalogSource `json:"items"`
}
