package tenancy_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/internal/tenancy"
	"github.com/ferrydev/ferry/internal/testenv"
)

const timeout = time.Minute

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// namespace creates a namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenancy-"}}
	if err := env.Client.Create(ctxFor(t), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// tenant creates a namespace with the documented tenant ServiceAccount.
func tenant(t *testing.T, scope testenv.TenantScope) tenancy.Identity {
	t.Helper()
	ns := namespace(t)
	name, err := testenv.Tenant(ctxFor(t), env.Config, ns, scope)
	if err != nil {
		t.Fatal(err)
	}
	return tenancy.Identity{Namespace: ns, Name: name}
}

func obj(t *testing.T, o runtime.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	gvks, _, err := env.Scheme.ObjectKinds(o)
	if err != nil {
		t.Fatal(err)
	}
	u.SetGroupVersionKind(gvks[0])
	return u
}

// installerClients are Clients made from the installer's deployed identity.
func installerClients(t *testing.T, opts ...tenancy.ClientsOption) *tenancy.Clients {
	t.Helper()
	cs, err := tenancy.NewClients(env.InstallerConfig(t), client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// installerChecker is a Checker acting as the installer's deployed identity.
func installerChecker(t *testing.T, opts ...tenancy.CheckerOption) *tenancy.Checker {
	t.Helper()
	c, err := client.New(env.InstallerConfig(t), client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	return tenancy.NewChecker(c, opts...)
}
