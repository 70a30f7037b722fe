package tenancy_test

import (
	"slices"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/internal/tenancy"
	"github.com/ferrydev/ferry/internal/testenv"
)

// The installer's impersonating client is seen by the API server as the
// ServiceAccount, with exactly the groups a token of it would have.
func TestClientsActAsTheServiceAccount(t *testing.T) {
	ctx := ctxFor(t)
	id := tenant(t, testenv.NamespaceTenant)
	cs := installerClients(t)
	cl, err := cs.For(id)
	if err != nil {
		t.Fatal(err)
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := cl.Create(ctx, review); err != nil {
		t.Fatal(err)
	}
	got := review.Status.UserInfo
	if got.Username != id.Username() {
		t.Errorf("user %q, want %q", got.Username, id.Username())
	}
	groups := slices.Clone(got.Groups)
	want := id.Groups()
	slices.Sort(groups)
	slices.Sort(want)
	if !slices.Equal(groups, want) {
		t.Errorf("groups %v, want %v (Identity.Groups, which access reviews name)", got.Groups, want)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: "written-by-tenant"}}
	if err := cl.Create(ctx, cm); err != nil {
		t.Fatalf("the tenant may create ConfigMaps in its namespace: %v", err)
	}
	again, err := cs.For(id)
	if err != nil {
		t.Fatal(err)
	}
	if again != cl {
		t.Error("a second For made a new client; it is cached per ServiceAccount")
	}
}

func TestClientsAreBounded(t *testing.T) {
	cs, err := tenancy.NewClients(env.Config, client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()}, tenancy.WithMaxClients(4))
	if err != nil {
		t.Fatal(err)
	}
	first, err := cs.For(tenancy.Identity{Namespace: "a", Name: "sa-0"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if _, err := cs.For(tenancy.Identity{Namespace: "a", Name: "sa-" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	again, err := cs.For(tenancy.Identity{Namespace: "a", Name: "sa-0"})
	if err != nil {
		t.Fatal(err)
	}
	if again == first {
		t.Error("the least recently used client was kept beyond the bound of 4")
	}
	if _, err := cs.For(tenancy.Identity{Namespace: "a"}); err == nil {
		t.Error("For accepted an identity without a name")
	}
}

func TestNewClientsRefusesAnImpersonatingConfig(t *testing.T) {
	cfg := *env.Config
	cfg.Impersonate.UserName = "someone"
	if _, err := tenancy.NewClients(&cfg, client.Options{Scheme: env.Scheme}); err == nil {
		t.Fatal("NewClients accepted a config that already impersonates")
	}
}

// Two tenants cannot touch each other's objects: each one's client is
// refused in the other's namespace. The clients are made from the admin's
// config here, as the installer's test identity fails any test it is
// refused in; the refusal comes from the tenant's RBAC either way.
func TestTenantsCannotTouchEachOther(t *testing.T) {
	ctx := ctxFor(t)
	a := tenant(t, testenv.NamespaceTenant)
	b := tenant(t, testenv.NamespaceTenant)
	cs, err := tenancy.NewClients(env.Config, client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := cs.For(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := cs.For(b)
	if err != nil {
		t.Fatal(err)
	}
	ofB := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: "b-config"}, Data: map[string]string{"k": "v"}}
	if err := cb.Create(ctx, ofB); err != nil {
		t.Fatalf("tenant b in its own namespace: %v", err)
	}
	tests := []struct {
		name string
		do   func() error
	}{
		{"create in the other namespace", func() error {
			return ca.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: "from-a"}})
		}},
		{"patch the other's object", func() error {
			p := ofB.DeepCopy()
			p.Data["k"] = "changed"
			return ca.Patch(ctx, p, client.MergeFrom(ofB))
		}},
		{"delete the other's object", func() error { return ca.Delete(ctx, ofB.DeepCopy()) }},
		{"read the other's object", func() error {
			return ca.Get(ctx, client.ObjectKeyFromObject(ofB), &corev1.ConfigMap{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !apierrors.IsForbidden(err) {
				t.Fatalf("got %v, want Forbidden", err)
			}
		})
	}
	got := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ofB), got); err != nil || got.Data["k"] != "v" {
		t.Fatalf("b's ConfigMap after a's attempts: %v, %v", got.Data, err)
	}
}
