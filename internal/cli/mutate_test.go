package cli_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/cli"
)

func get(t *testing.T, ns, name string) *v1alpha1.Subscription {
	t.Helper()
	sub := &v1alpha1.Subscription{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sub); err != nil {
		t.Fatal(err)
	}
	return sub
}

func TestApprove(t *testing.T) {
	ns := namespace(t, "approve")
	create(t, lighthouse(ns))
	auto := beacon(ns)
	create(t, auto)
	idle := lighthouse(ns)
	idle.Name = "idle"
	idle.Status.AvailableUpgrade = nil
	idle.Status.State = v1alpha1.StateInstalled
	idle.Status.LatestVersion = "1.3.0"
	create(t, idle)

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name      string
			args      []string
			fragments []string
		}{
			{name: "no such subscription", args: []string{"approve", "nope", "-n", ns}, fragments: []string{`Subscription "nope" not found in namespace "approve"`}},
			{name: "automatic", args: []string{"approve", "beacon-metrics", "-n", ns}, fragments: []string{"subscription approve/beacon-metrics has approval Automatic: upgrades need no approval"}},
			{name: "nothing waits", args: []string{"approve", "idle", "-n", ns}, fragments: []string{"subscription approve/idle: no upgrade waits for approval (status.availableUpgrade is empty; installed: 1.3.0, latest: 1.3.0, state: Installed)"}},
			{name: "not the offered version", args: []string{"approve", "lighthouse-operator", "1.9.0", "-n", ns}, fragments: []string{"version 1.9.0 of Subscription approve/lighthouse-operator cannot be approved: the upgrade the installer offers is 1.4.0 (status.availableUpgrade); 1.9.0 is not reachable from 1.3.0 now"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { wantError(t, tc.args, tc.fragments...) })
		}
		if v := get(t, ns, "lighthouse-operator").Spec.ApprovedVersion; v != "" {
			t.Errorf("a refused approval set spec.approvedVersion to %q", v)
		}
	})

	t.Run("without wait", func(t *testing.T) {
		sub := lighthouse(ns)
		sub.Name = "nowait"
		create(t, sub)
		r := mustRun(t, "approve", "nowait", "-n", ns)
		if r.out != "Subscription approve/nowait: approved 1.4.0\n" {
			t.Errorf("stdout %q", r.out)
		}
		if v := get(t, ns, "nowait").Spec.ApprovedVersion; v != "1.4.0" {
			t.Errorf("spec.approvedVersion is %q, want 1.4.0", v)
		}
	})

	t.Run("wait until installed", func(t *testing.T) {
		before := get(t, ns, "lighthouse-operator")
		done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(ctx context.Context, sub *v1alpha1.Subscription) error {
			sub.Status.State = v1alpha1.StateInstalled
			sub.Status.InstalledVersion = "1.4.0"
			sub.Status.AvailableUpgrade = nil
			observed(sub)
			return nil
		})
		r := mustRun(t, "approve", "lighthouse-operator", "1.4.0", "-n", ns, "--wait", "--timeout", "30s")
		done()
		if !strings.Contains(r.errOut, "Waiting for the upgrade of approve/lighthouse-operator to 1.4.0 ...") ||
			!strings.HasSuffix(r.errOut, "the upgrade of approve/lighthouse-operator to 1.4.0: done\n") {
			t.Errorf("progress:\n%s", r.errOut)
		}
	})

	t.Run("wait until installed while the next upgrade already waits", func(t *testing.T) {
		sub := lighthouse(ns)
		sub.Name = "next"
		create(t, sub)
		before := get(t, ns, "next")
		done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(_ context.Context, sub *v1alpha1.Subscription) error {
			sub.Status.State = v1alpha1.StateUpgradePending
			sub.Status.InstalledVersion, sub.Status.LatestVersion = "1.4.0", "1.5.0"
			sub.Status.AvailableUpgrade = &v1alpha1.AvailableUpgrade{Version: "1.5.0", Bundle: "lighthouse-operator.v1.5.0", Edge: "replaces"}
			observed(sub)
			return nil
		})
		r := mustRun(t, "approve", "next", "-n", ns, "--wait", "--timeout", "30s")
		done()
		if !strings.HasSuffix(r.errOut, "the upgrade of approve/next to 1.4.0: done\n") {
			t.Errorf("progress:\n%s", r.errOut)
		}
	})

	t.Run("wait until it fails its health gate", func(t *testing.T) {
		sub := lighthouse(ns)
		sub.Name = "fails"
		create(t, sub)
		before := get(t, ns, "fails")
		done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(ctx context.Context, sub *v1alpha1.Subscription) error {
			sub.Status.FailedUpgrade = &v1alpha1.FailedUpgrade{Version: "1.4.0", Bundle: "lighthouse-operator.v1.4.0", Revision: 4,
				ContentDigest: digest(4), Reason: "did not become healthy within 5m0s: pod unschedulable", Time: at(10, 0)}
			sub.Status.State = v1alpha1.StateInstalled
			observed(sub)
			return nil
		})
		err := wantError(t, []string{"approve", "fails", "-n", ns, "--wait", "--timeout", "30s"},
			"approve/fails: upgrade to 1.4.0 failed: revision 4: did not become healthy within 5m0s: pod unschedulable")
		done()
		var oe *cli.OutcomeError
		if !errors.As(err, &oe) {
			t.Errorf("error is %T, want *cli.OutcomeError", err)
		}
	})

	t.Run("wait until the installer stops", func(t *testing.T) {
		sub := lighthouse(ns)
		sub.Name = "unsafe"
		create(t, sub)
		before := get(t, ns, "unsafe")
		done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(ctx context.Context, sub *v1alpha1.Subscription) error {
			msg := `CRD beacons.lighthouse.ferry.dev: Beacon approve/north (stored as v1) is invalid under the new schema`
			setCond(sub, cond(v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, msg, 0))
			setCond(sub, cond(v1alpha1.TypeCRDUpgradeSafe, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, msg, 0))
			observed(sub)
			return nil
		})
		wantError(t, []string{"approve", "unsafe", "-n", ns, "--wait", "--timeout", "30s"},
			"approve/unsafe: upgrade to 1.4.0 failed: CRDChangeUnsafe: CRD beacons.lighthouse.ferry.dev: Beacon approve/north (stored as v1) is invalid")
		done()
	})

	t.Run("timeout before the installer observes the change", func(t *testing.T) {
		sub := lighthouse(ns)
		sub.Name = "unobserved"
		create(t, sub)
		err := wantError(t, []string{"approve", "unobserved", "-n", ns, "--wait", "--timeout", "300ms"},
			"timed out after 300ms waiting for the upgrade of approve/unobserved to 1.4.0; last seen: the installer has not observed generation 2 yet (status is for generation 1)")
		var te *cli.WaitTimeoutError
		if !errors.As(err, &te) {
			t.Errorf("error is %T, want *cli.WaitTimeoutError", err)
		}
	})
}

// rollbackFixture is a Subscription at revision 3 (1.4.0) with revisions
// 1 (1.2.0, healthy), 2 (1.3.0, healthy) and 3 (1.4.0, healthy), all
// recorded by the installer except what a case removes.
func rollbackFixture(t *testing.T, ns, name string) *v1alpha1.Subscription {
	t.Helper()
	sub := lighthouse(ns)
	sub.Name = name
	sub.Spec.Approval = v1alpha1.ApprovalAutomatic
	sub.Status.AvailableUpgrade, sub.Status.FailedUpgrade = nil, nil
	sub.Status.State, sub.Status.InstalledVersion, sub.Status.CurrentRevision = v1alpha1.StateInstalled, "1.4.0", 3
	for n := int64(1); n <= 3; n++ {
		sub.Status.RevisionDigests = append(sub.Status.RevisionDigests, v1alpha1.RevisionDigest{Revision: n, ContentDigest: digest(n)})
	}
	create(t, sub)
	create(t, revision(sub, 1, "1.2.0", "Install", v1alpha1.OutcomeHealthy, "healthy"))
	create(t, revision(sub, 2, "1.3.0", "Upgrade", v1alpha1.OutcomeHealthy, "healthy"))
	create(t, revision(sub, 3, "1.4.0", "Upgrade", v1alpha1.OutcomeHealthy, "healthy"))
	return sub
}

func TestRollback(t *testing.T) {
	ns := namespace(t, "rollback")

	t.Run("errors", func(t *testing.T) {
		sub := rollbackFixture(t, ns, "errs")
		forged := revision(sub, 4, "1.1.0", "Upgrade", v1alpha1.OutcomeHealthy, "healthy")
		create(t, forged)
		changed := revision(sub, 5, "1.0.0", "Upgrade", v1alpha1.OutcomeHealthy, "healthy")
		create(t, changed)
		s := get(t, ns, "errs")
		s.Status.RevisionDigests = append(s.Status.RevisionDigests, v1alpha1.RevisionDigest{Revision: 5, ContentDigest: digest(9)})
		if err := env.Client.Status().Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name      string
			args      []string
			fragments []string
		}{
			{name: "no such revision", args: []string{"rollback", "errs", "7", "-n", ns}, fragments: []string{"subscription rollback/errs has no revision 7; kept: 1 (1.2.0, Healthy), 2 (1.3.0, Healthy), 3 (1.4.0, Healthy), 4 (1.1.0, Healthy), 5 (1.0.0, Healthy)"}},
			{name: "not a number", args: []string{"rollback", "errs", "two", "-n", ns}, fragments: []string{`revision "two": not a revision number`}},
			{name: "current", args: []string{"rollback", "errs", "3", "-n", ns}, fragments: []string{"revision 3 (1.4.0) is the current revision of Subscription rollback/errs: nothing to roll back"}},
			{name: "not recorded", args: []string{"rollback", "errs", "4", "-n", ns}, fragments: []string{"revision 4 of Subscription rollback/errs is not recorded in status.revisionDigests", "RevisionUntrusted"}},
			{name: "changed", args: []string{"rollback", "errs", "5", "-n", ns}, fragments: []string{"revision 5 of Subscription rollback/errs has content digest " + digest(5) + " but the installer recorded " + digest(9)}},
			{name: "no such subscription", args: []string{"rollback", "nope", "-n", ns}, fragments: []string{`Subscription "nope" not found in namespace "rollback"`}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { wantError(t, tc.args, tc.fragments...) })
		}
		if r := get(t, ns, "errs").Spec.RollbackTo; r != nil {
			t.Errorf("a refused rollback set spec.rollbackTo to %d", r.Revision)
		}
	})

	t.Run("no healthy revision before the current one", func(t *testing.T) {
		sub := lighthouse(ns)
		sub.Name = "first"
		sub.Status.CurrentRevision = 1
		create(t, sub)
		create(t, revision(sub, 1, "1.3.0", "Install", v1alpha1.OutcomeHealthy, "healthy"))
		wantError(t, []string{"rollback", "first", "-n", ns}, "subscription rollback/first has no healthy revision before the current one (revision 1) to roll back to; kept: 1 (1.3.0, Healthy)")
	})

	t.Run("default is the previous healthy revision, wait until restored", func(t *testing.T) {
		sub := rollbackFixture(t, ns, "ok")
		before := get(t, ns, "ok")
		done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(ctx context.Context, s *v1alpha1.Subscription) error {
			rb := revision(sub, 4, "1.3.0", "Rollback", v1alpha1.OutcomeHealthy, "healthy")
			rb.Spec.RollbackOf = 2
			if err := createWithStatus(ctx, rb); err != nil {
				return err
			}
			s.Status.CurrentRevision, s.Status.InstalledVersion = 4, "1.3.0"
			s.Status.RevisionDigests = append(s.Status.RevisionDigests, v1alpha1.RevisionDigest{Revision: 4, ContentDigest: digest(4)})
			setCond(s, cond(v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonPinned, "pinned to revision 2", 0))
			observed(s)
			return nil
		})
		r := mustRun(t, "rollback", "ok", "-n", ns, "--wait", "--timeout", "30s")
		done()
		if r.out != "Subscription rollback/ok: rolling back to revision 2 (1.3.0)\n" {
			t.Errorf("stdout %q", r.out)
		}
		if !strings.HasSuffix(r.errOut, "the rollback of rollback/ok to revision 2 (1.3.0): done\n") {
			t.Errorf("progress:\n%s", r.errOut)
		}
		if rt := get(t, ns, "ok").Spec.RollbackTo; rt == nil || rt.Revision != 2 {
			t.Errorf("spec.rollbackTo is %+v, want revision 2", rt)
		}
	})

	t.Run("wait until the restored revision fails", func(t *testing.T) {
		sub := rollbackFixture(t, ns, "bad")
		before := get(t, ns, "bad")
		done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(ctx context.Context, s *v1alpha1.Subscription) error {
			rb := revision(sub, 4, "1.2.0", "Rollback", v1alpha1.OutcomeFailed, "did not become healthy within 5m0s: image pull failure")
			rb.Spec.RollbackOf = 1
			if err := createWithStatus(ctx, rb); err != nil {
				return err
			}
			s.Status.CurrentRevision = 4
			observed(s)
			return nil
		})
		wantError(t, []string{"rollback", "bad", "1", "-n", ns, "--wait", "--timeout", "30s"},
			"rollback/bad: rollback to revision 1 failed: revision 4 is Failed: did not become healthy within 5m0s: image pull failure")
		done()
	})

	t.Run("wait until the installer refuses the revision", func(t *testing.T) {
		rollbackFixture(t, ns, "untrusted")
		before := get(t, ns, "untrusted")
		done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(ctx context.Context, s *v1alpha1.Subscription) error {
			msg := "revision 1: blob ferry-blob-aaaa does not match the recorded digest"
			s.Status.Explanation = msg
			setCond(s, cond(v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonRevisionUntrusted, msg, 0))
			observed(s)
			return nil
		})
		wantError(t, []string{"rollback", "untrusted", "1", "-n", ns, "--wait", "--timeout", "30s"},
			"rollback/untrusted: rollback to revision 1 failed: RevisionUntrusted: revision 1: blob ferry-blob-aaaa does not match")
		done()
	})
}

func TestPauseResume(t *testing.T) {
	ns := namespace(t, "pause")
	sub := lighthouse(ns)
	sub.Name = "signal"
	create(t, sub)

	before := get(t, ns, "signal")
	done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(_ context.Context, s *v1alpha1.Subscription) error {
		s.Status.State = v1alpha1.StatePaused
		setCond(s, cond(v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonPaused, "paused: nothing is changed until spec.paused is false", 0))
		observed(s)
		return nil
	})
	r := mustRun(t, "pause", "signal", "-n", ns, "--wait", "--timeout", "30s")
	done()
	if r.out != "Subscription pause/signal: paused\n" || !strings.HasSuffix(r.errOut, "Subscription pause/signal to be paused: done\n") {
		t.Errorf("stdout %q, stderr %q", r.out, r.errOut)
	}
	if !get(t, ns, "signal").Spec.Paused {
		t.Error("spec.paused is false after pause")
	}

	before = get(t, ns, "signal")
	done = controller(t, client.ObjectKeyFromObject(before), before.Generation, func(_ context.Context, s *v1alpha1.Subscription) error {
		s.Status.State = v1alpha1.StateUpgradePending
		meta.RemoveStatusCondition(&s.Status.Conditions, v1alpha1.TypeProgressing)
		observed(s)
		return nil
	})
	r = mustRun(t, "resume", "signal", "-n", ns, "--wait", "--timeout", "30s")
	done()
	if r.out != "Subscription pause/signal: resumed\n" || !strings.HasSuffix(r.errOut, "Subscription pause/signal to be resumed: done\n") {
		t.Errorf("stdout %q, stderr %q", r.out, r.errOut)
	}
	if get(t, ns, "signal").Spec.Paused {
		t.Error("spec.paused is true after resume")
	}
	wantError(t, []string{"pause", "nope", "-n", ns}, `Subscription "nope" not found in namespace "pause"`)
}

func TestUnpin(t *testing.T) {
	ns := namespace(t, "unpin")
	sub := rollbackFixture(t, ns, "pinned")
	s := get(t, ns, "pinned")
	s.Spec.RollbackTo = &v1alpha1.RollbackTarget{Revision: 2}
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	setCond(s, cond(v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonPinned, "pinned to revision 2", s.Generation))
	if err := env.Client.Status().Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	before := get(t, ns, "pinned")
	done := controller(t, client.ObjectKeyFromObject(before), before.Generation, func(_ context.Context, s *v1alpha1.Subscription) error {
		setCond(s, cond(v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonResolved, "lighthouse-operator 1.4.0 from catalog ferry-samples", 0))
		observed(s)
		return nil
	})
	r := mustRun(t, "unpin", sub.Name, "-n", ns, "--wait", "--timeout", "30s")
	done()
	if r.out != "Subscription unpin/pinned: no longer pinned to revision 2\n" || !strings.HasSuffix(r.errOut, "Subscription unpin/pinned to resolve again: done\n") {
		t.Errorf("stdout %q, stderr %q", r.out, r.errOut)
	}
	if rt := get(t, ns, "pinned").Spec.RollbackTo; rt != nil {
		t.Errorf("spec.rollbackTo is still %d", rt.Revision)
	}
	wantError(t, []string{"unpin", "pinned", "-n", ns}, "subscription unpin/pinned is not pinned: spec.rollbackTo is not set")
}
