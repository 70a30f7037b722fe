package tenancy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/tenancy"
)

func TestPolicyIdentityFor(t *testing.T) {
	sub := func(sa string) *v1alpha1.Subscription {
		return &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "lighthouse"}, Spec: v1alpha1.SubscriptionSpec{ServiceAccountName: sa}}
	}
	tests := []struct {
		name    string
		policy  tenancy.Policy
		sa      string
		want    tenancy.Identity
		wantErr string
	}{
		{name: "named on the Subscription", sa: "installer", want: tenancy.Identity{Namespace: "team-a", Name: "installer"}},
		{name: "named wins over the default", policy: tenancy.Policy{DefaultServiceAccount: "ferry"}, sa: "installer", want: tenancy.Identity{Namespace: "team-a", Name: "installer"}},
		{name: "the default, in the Subscription's namespace", policy: tenancy.Policy{DefaultServiceAccount: "ferry"}, want: tenancy.Identity{Namespace: "team-a", Name: "ferry"}},
		{name: "neither", wantErr: "Subscription team-a/lighthouse names no ServiceAccount (spec.serviceAccountName) and the installer has no default (--default-service-account)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.policy.IdentityFor(sub(tt.sa))
			if tt.wantErr != "" {
				var nsa *tenancy.NoServiceAccountError
				if !errors.As(err, &nsa) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("IdentityFor = %v, %v; want *NoServiceAccountError saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IdentityFor = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tt := range []struct {
		name, sa string
		ok       bool
	}{
		{name: "none", ok: true},
		{name: "a name", sa: "ferry-installer", ok: true},
		{name: "upper case", sa: "Ferry"},
		{name: "a path", sa: "a/b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tenancy.Policy{DefaultServiceAccount: tt.sa}.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%q) = %v", tt.sa, err)
			}
		})
	}
}

func TestIdentityNames(t *testing.T) {
	id := tenancy.Identity{Namespace: "team-a", Name: "installer"}
	if got := id.Username(); got != "system:serviceaccount:team-a:installer" {
		t.Errorf("Username = %q", got)
	}
	want := []string{"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"}
	if got := id.Groups(); !slices.Equal(got, want) {
		t.Errorf("Groups = %v, want %v", got, want)
	}
}
