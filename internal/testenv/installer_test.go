package testenv_test

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferrydev/ferry/internal/testenv"
)

// TestInstallerConfig: the config authenticates as the installer's
// ServiceAccount and holds exactly what config/rbac grants it.
func TestInstallerConfig(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(env.InstallerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := review.Status.UserInfo.Username, "system:serviceaccount:ferry-system:ferry-installer"; got != want {
		t.Errorf("authenticated as %q, want %q", got, want)
	}

	tests := []struct {
		name string
		attr authorizationv1.ResourceAttributes
		want bool
	}{
		{"patch Subscription status", authorizationv1.ResourceAttributes{Group: "operators.ferry.dev", Resource: "subscriptions", Subresource: "status", Verb: "patch", Namespace: "team-a"}, true},
		{"list any custom resource", authorizationv1.ResourceAttributes{Group: "lighthouse.ferry.dev", Resource: "beacons", Verb: "list", Namespace: "team-a"}, true},
		{"renew its lease", authorizationv1.ResourceAttributes{Group: "coordination.k8s.io", Resource: "leases", Name: "installer.operators.ferry.dev", Verb: "update", Namespace: "ferry-system"}, true},
		{"read a Deployment", authorizationv1.ResourceAttributes{Group: "apps", Resource: "deployments", Verb: "get", Namespace: "team-a"}, true},
		{"apply a Deployment (made as the Subscription's ServiceAccount)", authorizationv1.ResourceAttributes{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "team-a"}, false},
		{"impersonate a ServiceAccount", authorizationv1.ResourceAttributes{Resource: "serviceaccounts", Verb: "impersonate", Namespace: "team-a", Name: "ferry-tenant"}, true},
		{"impersonate a user", authorizationv1.ResourceAttributes{Resource: "users", Verb: "impersonate", Name: "alice"}, false},
		{"impersonate a group", authorizationv1.ResourceAttributes{Resource: "groups", Verb: "impersonate", Name: "system:masters"}, false},
		{"escalate a ClusterRole", authorizationv1.ResourceAttributes{Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Verb: "escalate"}, false},
		{"bind a ClusterRole", authorizationv1.ResourceAttributes{Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Verb: "bind", Name: "cluster-admin"}, false},
		{"create a ClusterRoleBinding", authorizationv1.ResourceAttributes{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Verb: "create"}, false},
		{"create a Subscription", authorizationv1.ResourceAttributes{Group: "operators.ferry.dev", Resource: "subscriptions", Verb: "create", Namespace: "team-a"}, false},
		{"review another's access", authorizationv1.ResourceAttributes{Group: "authorization.k8s.io", Resource: "subjectaccessreviews", Verb: "create"}, true},
		{"get any custom resource", authorizationv1.ResourceAttributes{Group: "lighthouse.ferry.dev", Resource: "beacons", Verb: "get", Namespace: "team-a"}, false},
		{"update a Deployment", authorizationv1.ResourceAttributes{Group: "apps", Resource: "deployments", Verb: "update", Namespace: "team-a"}, false},
		{"create a Namespace", authorizationv1.ResourceAttributes{Resource: "namespaces", Verb: "create"}, false},
		{"another lease", authorizationv1.ResourceAttributes{Group: "coordination.k8s.io", Resource: "leases", Name: "other", Verb: "update", Namespace: "ferry-system"}, false},
		{"delete a Subscription", authorizationv1.ResourceAttributes{Group: "operators.ferry.dev", Resource: "subscriptions", Verb: "delete", Namespace: "team-a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &tt.attr},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.Allowed != tt.want {
				t.Errorf("allowed = %v, want %v (%s)", r.Status.Allowed, tt.want, r.Status.Reason)
			}
		})
	}
}
