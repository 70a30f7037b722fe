package tenancy_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ferrydev/ferry/internal/tenancy"
	"github.com/ferrydev/ferry/internal/testenv"
)

// reviewLog records the SubjectAccessReviews a Checker makes through the
// installer's real client.
type reviewLog struct {
	mu    sync.Mutex
	verbs []string
}

func (l *reviewLog) asked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.verbs)
}

func countingChecker(t *testing.T, opts ...tenancy.CheckerOption) (*tenancy.Checker, *reviewLog) {
	t.Helper()
	real, err := client.NewWithWatch(env.InstallerConfig(t), client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	log := &reviewLog{}
	c := interceptor.NewClient(real, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if sar, ok := obj.(*authorizationv1.SubjectAccessReview); ok && sar.Spec.ResourceAttributes != nil {
				log.mu.Lock()
				log.verbs = append(log.verbs, sar.Spec.ResourceAttributes.Verb)
				log.mu.Unlock()
			}
			return c.Create(ctx, obj, opts...)
		},
	})
	return tenancy.NewChecker(c, opts...), log
}

// The other way of an escalation check, holding every rule a role grants,
// is reviewed only where escalate or bind is refused: one review per verb
// and resource of every rule, for every install, is what made the
// installer's access reviews the bulk of its requests (docs/scale.md).
func TestCheckerAsksRulesOnlyWhereEscalationIsRefused(t *testing.T) {
	writes := []string{"create", "patch", "escalate", "bind"}
	tests := []struct {
		name  string
		scope testenv.TenantScope
		// rules is whether the rules the roles grant must be asked.
		rules       bool
		wantAllowed bool
	}{
		{name: "a tenant that may escalate and bind", scope: testenv.ClusterTenant, rules: false, wantAllowed: true},
		{name: "a tenant that may not write cluster RBAC", scope: testenv.NamespaceTenant, rules: true, wantAllowed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tenant(t, tt.scope)
			checker, log := countingChecker(t)
			err := checker.Check(ctxFor(t), id, tenancy.Plan{Apply: append(operator(t, id.Namespace), clusterRBAC(t, id.Namespace)...)})
			if (err == nil) != tt.wantAllowed {
				t.Fatalf("Check = %v, want allowed %v", err, tt.wantAllowed)
			}
			asked := log.asked()
			if len(asked) == 0 {
				t.Fatal("no access review was made")
			}
			var other []string
			for _, v := range asked {
				if !slices.Contains(writes, v) {
					other = append(other, v)
				}
			}
			if tt.rules && len(other) == 0 {
				t.Errorf("reviews %v: the rules of the ClusterRole the tenant may not escalate were not asked", asked)
			}
			if !tt.rules && len(other) > 0 {
				t.Errorf("reviews %v: the rules %v were asked though escalate and bind are allowed", asked, other)
			}
			seen := map[string]int{}
			for _, v := range asked {
				seen[v]++
			}
			t.Logf("%d access reviews: %v", len(asked), seen)
		})
	}
}

// An install checks its plan twice within moments (before it records the
// revision, and when it applies it): the second check asks the API server
// only about what it refused.
func TestCheckerRemembersOnlyAllowedReviews(t *testing.T) {
	tests := []struct {
		name  string
		scope testenv.TenantScope
		opts  []tenancy.CheckerOption
		// again is whether the second check must ask anything.
		again bool
	}{
		{name: "all allowed, remembered", scope: testenv.ClusterTenant, again: false},
		{name: "all allowed, memory off", scope: testenv.ClusterTenant, opts: []tenancy.CheckerOption{tenancy.WithAllowedTTL(0)}, again: true},
		{name: "refusals are asked again", scope: testenv.NamespaceTenant, again: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tenant(t, tt.scope)
			checker, log := countingChecker(t, tt.opts...)
			plan := tenancy.Plan{Apply: append(operator(t, id.Namespace), clusterRBAC(t, id.Namespace)...)}
			first := checker.Check(ctxFor(t), id, plan)
			n := len(log.asked())
			second := checker.Check(ctxFor(t), id, plan)
			if (first == nil) != (second == nil) || (first != nil && first.Error() != second.Error()) {
				t.Fatalf("the second check says %v, the first %v", second, first)
			}
			asked := log.asked()[n:]
			if tt.again && len(asked) == 0 {
				t.Errorf("the second check asked nothing")
			}
			if !tt.again && len(asked) > 0 {
				t.Errorf("the second check asked again: %v", asked)
			}
		})
	}
}
