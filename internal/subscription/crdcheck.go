package subscription

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/crdsafety"
)

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
