package asdeployed

import (
	"reflect"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// rbacObjects parses docs, RBAC objects each as one YAML flow mapping
// without its apiVersion.
func rbacObjects(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	var all strings.Builder
	for _, d := range docs {
		all.WriteString("---\n{apiVersion: rbac.authorization.k8s.io/v1, " + strings.TrimPrefix(d, "{") + "\n")
	}
	m, err := Parse(strings.NewReader(all.String()))
	if err != nil {
		t.Fatal(err)
	}
	return m.Objects
}

const (
	role = `{kind: Role, metadata: {name: r, namespace: ns}, rules: [
  {apiGroups: [""], nonResourceURLs: ["/x"], verbs: [get]},
  {apiGroups: ["apps"], resources: [deployments/status], verbs: [patch, get]}]}`
	clusterRole = `{kind: ClusterRole, metadata: {name: cr}, rules: [
  {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], resourceNames: [a.example.com], verbs: [get]}]}`
	roleBinding = `{kind: RoleBinding, metadata: {name: rb, namespace: ns}, roleRef: {kind: Role, name: r},
  subjects: [{kind: ServiceAccount, name: sa, namespace: ns}, {kind: User, name: alice}]}`
	clusterRoleBinding = `{kind: ClusterRoleBinding, metadata: {name: crb}, roleRef: {kind: ClusterRole, name: cr},
  subjects: [{kind: ServiceAccount, name: sa, namespace: ns}, {kind: ServiceAccount, name: other, namespace: ns2}]}`
	roleBindingToClusterRole = `{kind: RoleBinding, metadata: {name: rb2, namespace: ns3}, roleRef: {kind: ClusterRole, name: cr},
  subjects: [{kind: ServiceAccount, name: sa, namespace: ns3}]}`
	bindingToAnUnappliedRole = `{kind: ClusterRoleBinding, metadata: {name: view}, roleRef: {kind: ClusterRole, name: view},
  subjects: [{kind: ServiceAccount, name: sa, namespace: ns}]}`
	roleElsewhere = `{kind: Role, metadata: {name: r, namespace: elsewhere}, rules: [{apiGroups: [""], resources: [pods], verbs: [list]}]}`
)

func TestGrants(t *testing.T) {
	deployments := authorizationv1.ResourceAttributes{Namespace: "ns", Verb: "patch", Group: "apps", Resource: "deployments", Subresource: "status"}
	crd := authorizationv1.ResourceAttributes{Verb: "get", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Name: "a.example.com"}
	crdInNS3 := crd
	crdInNS3.Namespace = "ns3"
	tests := []struct {
		name string
		docs []string
		want []grant
	}{
		{name: "a role's first resource rule, for ServiceAccounts only", docs: []string{role, roleBinding},
			want: []grant{{namespace: "ns", name: "sa", attr: deployments}}},
		{name: "a cluster role, every ServiceAccount bound", docs: []string{clusterRole, clusterRoleBinding},
			want: []grant{{namespace: "ns", name: "sa", attr: crd}, {namespace: "ns2", name: "other", attr: crd}}},
		{name: "a cluster role bound in a namespace", docs: []string{clusterRole, roleBindingToClusterRole},
			want: []grant{{namespace: "ns3", name: "sa", attr: crdInNS3}}},
		{name: "a role not applied is not checked", docs: []string{bindingToAnUnappliedRole}},
		{name: "a role of the same name in another namespace is not the one bound", docs: []string{roleElsewhere, roleBinding}},
		{name: "roles without bindings", docs: []string{role, clusterRole}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := grants(rbacObjects(t, tt.docs...)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("grants = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
