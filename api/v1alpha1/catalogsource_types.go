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

	// tls says how the installer secures the connection to catalogd. Without
	// it, the installer uses TLS and verifies catalogd's certificate against
	// its system roots. Plaintext is used only with insecurePlaintext: true.
	// Secrets and ConfigMaps named here are read from the installer's own
	// namespace (ferry-system by default), never from another one.
	// +optional
	TLS *CatalogSourceTLS `json:"tls,omitempty"`
}

// DefaultCABundleKey is the key a KeyReference names when it names none.
const DefaultCABundleKey = "ca.crt"

// CatalogSourceTLS secures the connection to catalogd: either TLS settings
// (caBundle, serverName, clientCertificate) or insecurePlaintext, never both.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.insecurePlaintext) && self.insecurePlaintext) || !(has(self.caBundle) || has(self.serverName) || has(self.clientCertificate))",message="insecurePlaintext excludes caBundle, serverName and clientCertificate"
type CatalogSourceTLS struct {
	// insecurePlaintext connects without TLS: nothing is encrypted and the
	// server is not authenticated. Only for catalogd on loopback or inside a
	// trusted network.
	// +optional
	InsecurePlaintext bool `json:"insecurePlaintext,omitempty"`

	// caBundle holds the PEM certificates that catalogd's certificate must
	// chain to, instead of the system roots.
	// +optional
	CABundle *CABundleSource `json:"caBundle,omitempty"`

	// serverName is the name checked in catalogd's certificate; default: the
	// host of spec.address.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9:]([-A-Za-z0-9.:]*[A-Za-z0-9])?$')",message="serverName must be a DNS name or an IP address"
	// +optional
	ServerName string `json:"serverName,omitempty"`

	// clientCertificate is presented to catalogd when it requires mutual TLS.
	// +optional
	ClientCertificate *ClientCertificateSource `json:"clientCertificate,omitempty"`
}

// CABundleSource names the Secret or the ConfigMap holding a CA bundle.
//
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) != has(self.secretRef)",message="exactly one of configMapRef and secretRef must be set"
type CABundleSource struct {
	// configMapRef names a key of a ConfigMap in the installer's namespace.
	// +optional
	ConfigMapRef *KeyReference `json:"configMapRef,omitempty"`

	// secretRef names a key of a Secret in the installer's namespace.
	// +optional
	SecretRef *KeyReference `json:"secretRef,omitempty"`
}

// KeyReference names one key of a ConfigMap or Secret in the installer's
// namespace.
type KeyReference struct {
	// name of the ConfigMap or Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="name must be a DNS subdomain"
	// +required
	Name string `json:"name"`

	// key holding the PEM certificates.
	// +kubebuilder:default="ca.crt"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="key must consist of alphanumeric characters, '-', '_' or '.'"
	// +optional
	Key string `json:"key,omitempty"`
}

// ClientCertificateSource names the Secret holding the installer's client
// certificate.
type ClientCertificateSource struct {
	// secretRef names a Secret in the installer's namespace with the keys
	// tls.crt (PEM certificate chain) and tls.key (PEM private key), as in a
	// Secret of type kubernetes.io/tls.
	// +required
	SecretRef SecretReference `json:"secretRef"`
}

// SecretReference names a Secret in the installer's namespace.
type SecretReference struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="name must be a DNS subdomain"
	// +required
	Name string `json:"name"`
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
// +kubebuilder:printcolumn:name="Plaintext",type=boolean,JSONPath=`.spec.tls.insecurePlaintext`,priority=1
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
