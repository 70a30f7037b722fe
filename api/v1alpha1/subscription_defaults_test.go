package v1alpha1

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestDefaultsMatchTheCRD checks that every Go default is the default the
// generated CRD gives the API server.
func TestDefaultsMatchTheCRD(t *testing.T) {
	spec := subscriptionSchema(t).Properties["spec"]
	tests := []struct {
		name string
		path []string
		want string
	}{
		{"approval", []string{"approval"}, string(DefaultApproval)},
		{"healthTimeout", []string{"healthTimeout"}, DefaultHealthTimeout.String()},
		{"revisionHistoryLimit", []string{"revisionHistoryLimit"}, fmt.Sprint(DefaultRevisionHistoryLimit)},
		{"rollbackPolicy", []string{"rollbackPolicy"}, string(DefaultRollbackPolicy)},
		{"crdUpgradeSafety", []string{"crdUpgradeSafety"}, string(DefaultCRDUpgradeSafety)},
		{"crdDeletionPolicy", []string{"crdDeletionPolicy"}, string(DefaultCRDDeletionPolicy)},
		{"adoption.policy", []string{"adoption", "policy"}, string(DefaultAdoptionPolicy)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := spec
			for _, name := range tt.path {
				var ok bool
				if p, ok = p.Properties[name]; !ok {
					t.Fatalf("the CRD has no field spec.%s", name)
				}
			}
			if p.Default == nil {
				t.Fatalf("spec.%s has no default in the CRD", tt.name)
			}
			got := strings.Trim(string(p.Default.Raw), `"`)
			if d, err := time.ParseDuration(got); err == nil {
				got = d.String()
			}
			if got != tt.want {
				t.Errorf("spec.%s defaults to %s in the CRD, %s in Go", tt.name, got, tt.want)
			}
		})
	}
}

func TestEffectiveDefaults(t *testing.T) {
	var s SubscriptionSpec
	if s.EffectiveHealthTimeout() != 5*time.Minute || s.EffectiveRevisionHistoryLimit() != 10 || s.EffectiveApproval() != ApprovalAutomatic ||
		s.EffectiveRollbackPolicy() != RollbackAutomatic || s.EffectiveCRDUpgradeSafety() != CRDSafetyStrict ||
		s.EffectiveCRDDeletionPolicy() != CRDDeletionKeep || s.EffectiveAdoptionPolicy() != AdoptionNone {
		t.Errorf("defaults of an empty spec: %v %v %v %v %v %v %v", s.EffectiveHealthTimeout(), s.EffectiveRevisionHistoryLimit(), s.EffectiveApproval(),
			s.EffectiveRollbackPolicy(), s.EffectiveCRDUpgradeSafety(), s.EffectiveCRDDeletionPolicy(), s.EffectiveAdoptionPolicy())
	}
}

// TestStatesMatchTheCRD checks SubscriptionStates against status.state's enum.
func TestStatesMatchTheCRD(t *testing.T) {
	var enum []string
	for _, v := range subscriptionSchema(t).Properties["status"].Properties["state"].Enum {
		enum = append(enum, strings.Trim(string(v.Raw), `"`))
	}
	var states []string
	for _, s := range SubscriptionStates {
		states = append(states, string(s))
	}
	if strings.Join(enum, ",") != strings.Join(states, ",") {
		t.Errorf("status.state enum %v, SubscriptionStates %v", enum, states)
	}
}

// subscriptionSchema is the generated CRD's schema of a Subscription.
func subscriptionSchema(t *testing.T) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	data, err := os.ReadFile("../../config/crd/bases/operators.ferry.dev_subscriptions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	return *crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}
