package subscription

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/crdsafety"
)

// The CRD upgrade check lists every existing custom resource of a CRD a new
// bundle version changes, to validate it against the new schema. Those
// CRDs are whatever operators ship, so their groups and resources are not
// known in advance, and a ClusterRole cannot say "custom resources only":
// list (and only list: no get, no watch, no write) is granted on every
// resource of every group. docs/deploy.md weighs this against the
// alternatives.
//
// +kubebuilder:rbac:groups=*,resources=*,verbs=list

// NewCRDChecker checks CRD changes with internal/crdsafety. c must read from
// the API server directly: custom resources are listed in pages.
func NewCRDChecker(c client.Client) CRDChecker { return crdChecker{&crdsafety.Checker{Client: c}} }

type crdChecker struct{ c *crdsafety.Checker }

func (a crdChecker) Check(ctx context.Context, live, next *apiextensionsv1.CustomResourceDefinition, policy v1alpha1.CRDUpgradeSafety) (CRDCheck, error) {
	res, err := a.c.Check(ctx, live, next, crdsafety.Policy(policy))
	if err != nil {
		return CRDCheck{}, err
	}
	out := CRDCheck{Blocked: res.Blocked}
	for _, f := range res.Findings {
		msg := f.Message
		if !f.Blocking() {
			msg += " (already invalid before; not blocking)"
		}
		out.Findings = append(out.Findings, msg)
	}
	return out, nil
}
