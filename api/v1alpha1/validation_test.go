package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/testenv"
)

// TestSubscriptionInstallModeValidation creates Subscriptions on a real API
// server with the generated CRD and checks what it refuses.
func TestSubscriptionInstallModeValidation(t *testing.T) {
	many := make([]string, v1alpha1.MaxTargetNamespaces+1)
	for i := range many {
		many[i] = fmt.Sprintf("team-%d", i)
	}
	tests := []struct {
		name    string
		mode    v1alpha1.InstallMode
		targets []string
		want    string // substring of the refusal; "" when accepted
	}{
		{name: "no mode, no targets", want: ""},
		{name: "OwnNamespace", mode: v1alpha1.InstallModeOwnNamespace, want: ""},
		{name: "SingleNamespace with one target", mode: v1alpha1.InstallModeSingleNamespace, targets: []string{"team-a"}, want: ""},
		{name: "MultiNamespace with targets", mode: v1alpha1.InstallModeMultiNamespace, targets: []string{"team-a", "team-b"}, want: ""},
		{name: "SingleNamespace without targets", mode: v1alpha1.InstallModeSingleNamespace, want: "targetNamespaces is required with installMode SingleNamespace or MultiNamespace"},
		{name: "MultiNamespace without targets", mode: v1alpha1.InstallModeMultiNamespace, want: "targetNamespaces is required with installMode SingleNamespace or MultiNamespace"},
		{name: "targets with AllNamespaces", mode: v1alpha1.InstallModeAllNamespaces, targets: []string{"team-a"}, want: "not allowed with any other"},
		{name: "targets without a mode", targets: []string{"team-a"}, want: "not allowed with any other"},
		{name: "SingleNamespace with two targets", mode: v1alpha1.InstallModeSingleNamespace, targets: []string{"team-a", "team-b"}, want: "installMode SingleNamespace takes exactly one target namespace"},
		{name: "a target that is no namespace name", mode: v1alpha1.InstallModeMultiNamespace, targets: []string{"Team_A"}, want: "spec.targetNamespaces[0]"},
		{name: "a target twice", mode: v1alpha1.InstallModeMultiNamespace, targets: []string{"team-a", "team-a"}, want: "Duplicate value"},
		{name: "too many targets", mode: v1alpha1.InstallModeMultiNamespace, targets: many, want: "must have at most 32 items"},
		{name: "an unknown mode", mode: "SomeNamespaces", want: "spec.installMode: Unsupported value"},
	}
	env := testenv.Start(t, testenv.WithScheme(v1alpha1.AddToScheme))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := &v1alpha1.Subscription{
				ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: fmt.Sprintf("sub-%d", i)},
				Spec:       v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", InstallMode: tt.mode, TargetNamespaces: tt.targets},
			}
			err := env.Client.Create(ctx, sub)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("Create = %v; want Invalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("refusal %q does not say %q", err, tt.want)
			}
		})
	}
}
