package install

import (
	"encoding/json"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// clusterServiceVersion holds the CSV fields that drive an install.
type clusterServiceVersion struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec csvSpec `json:"spec"`
}

type csvSpec struct {
	Version                   string                   `json:"version"`
	InstallModes              []csvInstallMode         `json:"installModes"`
	CustomResourceDefinitions csvCRDs                  `json:"customresourcedefinitions"`
	Install                   csvInstall               `json:"install"`
	WebhookDefinitions        []csvWebhook             `json:"webhookdefinitions"`
	APIServiceDefinitions     csvAPIServiceDefinitions `json:"apiservicedefinitions"`
}

type csvInstallMode struct {
	Type      string `json:"type"`
	Supported bool   `json:"supported"`
}

type csvCRDs struct {
	Owned    []csvCRDDescription `json:"owned"`
	Required []csvCRDDescription `json:"required"`
}

type csvCRDDescription struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

type csvAPIServiceDefinitions struct {
	Owned    []json.RawMessage `json:"owned"`
	Required []json.RawMessage `json:"required"`
}

type csvInstall struct {
	Strategy string          `json:"strategy"`
	Spec     csvStrategySpec `json:"spec"`
}

type csvStrategySpec struct {
	Deployments        []csvDeployment `json:"deployments"`
	Permissions        []csvPermission `json:"permissions"`
	ClusterPermissions []csvPermission `json:"clusterPermissions"`
}

type csvDeployment struct {
	Name  string                `json:"name"`
	Spec  appsv1.DeploymentSpec `json:"spec"`
	Label map[string]string     `json:"label,omitempty"`
}

type csvPermission struct {
	ServiceAccountName string              `json:"serviceAccountName"`
	Rules              []rbacv1.PolicyRule `json:"rules"`
}

// csvWebhook is one entry of spec.webhookdefinitions (OLM's
// WebhookDescription).
type csvWebhook struct {
	GenerateName            string                                          `json:"generateName"`
	Type                    string                                          `json:"type"`
	DeploymentName          string                                          `json:"deploymentName"`
	ContainerPort           int32                                           `json:"containerPort"`
	TargetPort              *intstr.IntOrString                             `json:"targetPort"`
	Rules                   []admissionregistrationv1.RuleWithOperations    `json:"rules"`
	FailurePolicy           *admissionregistrationv1.FailurePolicyType      `json:"failurePolicy"`
	MatchPolicy             *admissionregistrationv1.MatchPolicyType        `json:"matchPolicy"`
	ObjectSelector          *metav1.LabelSelector                           `json:"objectSelector"`
	SideEffects             *admissionregistrationv1.SideEffectClass        `json:"sideEffects"`
	TimeoutSeconds          *int32                                          `json:"timeoutSeconds"`
	AdmissionReviewVersions []string                                        `json:"admissionReviewVersions"`
	ReinvocationPolicy      *admissionregistrationv1.ReinvocationPolicyType `json:"reinvocationPolicy"`
	WebhookPath             *string                                         `json:"webhookPath"`
	ConversionCRDs          []string                                        `json:"conversionCRDs"`
}
