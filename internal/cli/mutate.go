package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// failureReasons are the reasons of a Progressing=False condition that
// end a change: the installer stopped and says why.
var failureReasons = []string{
	v1alpha1.ReasonInvalidBundle, v1alpha1.ReasonUnsupportedMode, v1alpha1.ReasonCRDUnsafe,
	v1alpha1.ReasonOwnershipConflict, v1alpha1.ReasonRevisionUntrusted, v1alpha1.ReasonContentMismatch,
	v1alpha1.ReasonNoServiceAccount, v1alpha1.ReasonPermissionsMissing, v1alpha1.ReasonHealthGateFailed,
	v1alpha1.ReasonCannotAct,
}

// busy are the states in which the installer is still at work: a version
// it reports as installed is not yet the outcome.
var busy = []v1alpha1.SubscriptionState{"", v1alpha1.StateResolving, v1alpha1.StateInstalling, v1alpha1.StateUpgrading}

// stopped returns why the installer stopped working on a Subscription, or
// "" when it did not.
func stopped(sub *v1alpha1.Subscription) string {
	if c := condition(sub, v1alpha1.TypeProgressing); c != nil && c.Status == metav1.ConditionFalse && slices.Contains(failureReasons, c.Reason) {
		return fmt.Sprintf("%s: %s", c.Reason, c.Message)
	}
	if sub.Status.State == v1alpha1.StateFailed {
		return "state Failed: " + orDefault(summary(sub), "no reason given")
	}
	return ""
}

// progressOf says where a Subscription is, for the progress line.
func progressOf(sub *v1alpha1.Subscription) string {
	msg := summary(sub)
	if msg == "" {
		return "state " + orDefault(string(sub.Status.State), "unknown")
	}
	return fmt.Sprintf("state %s: %s", orDefault(string(sub.Status.State), "unknown"), msg)
}

// change reads a Subscription, lets fn check and change it, and writes it
// back, again from a fresh read when someone else wrote it in between. It
// returns the Subscription as written. An error of fn stops it.
func change(ctx context.Context, c client.Client, ns, name string, fn func(*v1alpha1.Subscription) error) (*v1alpha1.Subscription, error) {
	var out *v1alpha1.Subscription
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sub, err := getSubscription(ctx, c, ns, name)
		if err != nil {
			return err
		}
		before := sub.DeepCopy()
		if err := fn(sub); err != nil {
			return err
		}
		if err := c.Patch(ctx, sub, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		out = sub
		return nil
	})
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return nil, err
		}
		return nil, fmt.Errorf("changing Subscription %s/%s: %w", ns, name, err)
	}
	return out, nil
}

func addWaitFlags(cmd *cobra.Command, w *waitFlags) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "wait until the installer has acted on the change and its outcome is known")
	cmd.Flags().DurationVar(&w.timeout, "timeout", DefaultTimeout, "how long --wait waits")
}

func (a *app) approveCommand() *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "approve SUBSCRIPTION [VERSION]",
		Short: "Approve the upgrade a Manual Subscription waits for (sets spec.approvedVersion)",
		Long: `approve sets spec.approvedVersion to VERSION, by default the version in
status.availableUpgrade. Only the upgrade the installer offers can be approved.`,
		Example: `  kubectl ferry approve lighthouse-operator -n lighthouse --wait
  kubectl ferry approve lighthouse-operator 1.4.0`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeSubscriptions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			want := ""
			if len(args) == 2 {
				want = args[1]
			}
			var version string
			var failedBefore int64
			rctx, cancel := requestContext(cmd)
			defer cancel()
			sub, err := change(rctx, c, ns, args[0], func(sub *v1alpha1.Subscription) error {
				v, err := approvable(sub, want)
				if err != nil {
					return err
				}
				version = v
				if f := sub.Status.FailedUpgrade; f != nil {
					failedBefore = f.Revision
				}
				sub.Spec.ApprovedVersion = v
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Subscription %s/%s: approved %s\n", sub.Namespace, sub.Name, version)
			if !w.wait {
				return nil
			}
			return a.waitFor(cmd.Context(), c, client.ObjectKeyFromObject(sub), sub.Generation, w.timeout,
				fmt.Sprintf("the upgrade of %s/%s to %s", sub.Namespace, sub.Name, version),
				func(_ context.Context, s *v1alpha1.Subscription) verdict {
					if f := s.Status.FailedUpgrade; f != nil && f.Version == version && f.Revision != failedBefore {
						return verdict{done: true, err: &OutcomeError{Subscription: key(s), What: "upgrade to " + version, Reason: fmt.Sprintf("revision %d: %s", f.Revision, f.Reason)}}
					}
					if why := stopped(s); why != "" {
						return verdict{done: true, err: &OutcomeError{Subscription: key(s), What: "upgrade to " + version, Reason: why}}
					}
					if s.Status.InstalledVersion == version && !slices.Contains(busy, s.Status.State) {
						return verdict{done: true}
					}
					return verdict{progress: progressOf(s)}
				})
		},
	}
	addWaitFlags(cmd, &w)
	return cmd
}

// approvable returns the version approve sets: want, or the available
// upgrade when want is empty. Anything but the available upgrade is refused,
// with what the status says.
func approvable(sub *v1alpha1.Subscription, want string) (string, error) {
	name := key(sub)
	if sub.Spec.Approval != v1alpha1.ApprovalManual {
		return "", fmt.Errorf("subscription %s has approval %s: upgrades need no approval", name, orDefault(string(sub.Spec.Approval), string(v1alpha1.ApprovalAutomatic)))
	}
	u := sub.Status.AvailableUpgrade
	if u == nil {
		installed := orDefault(sub.Status.InstalledVersion, "nothing")
		why := fmt.Sprintf("installed: %s, latest: %s, state: %s", installed, orDefault(sub.Status.LatestVersion, "unknown"), orDefault(string(sub.Status.State), "unknown"))
		if e := sub.Status.Explanation; e != "" {
			why += "; " + e
		}
		if want != "" {
			return "", fmt.Errorf("version %s of Subscription %s cannot be approved: no upgrade waits for approval (status.availableUpgrade is empty; %s)", want, name, why)
		}
		return "", fmt.Errorf("subscription %s: no upgrade waits for approval (status.availableUpgrade is empty; %s)", name, why)
	}
	if want != "" && want != u.Version {
		return "", fmt.Errorf("version %s of Subscription %s cannot be approved: the upgrade the installer offers is %s (status.availableUpgrade); %s is not reachable from %s now", want, name, u.Version, want, orDefault(sub.Status.InstalledVersion, "nothing installed"))
	}
	return u.Version, nil
}

func (a *app) rollbackCommand() *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "rollback SUBSCRIPTION [REVISION]",
		Short: "Restore a revision (sets spec.rollbackTo), by default the previous healthy one",
		Long: `rollback sets spec.rollbackTo to REVISION, by default the newest healthy revision
before the current one. The installer applies that revision's objects as a new
revision and keeps the Subscription there: no upgrade happens until
spec.rollbackTo is removed.`,
		Example: `  kubectl ferry rollback lighthouse-operator -n lighthouse --wait
  kubectl ferry rollback lighthouse-operator 2`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeSubscriptions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			var want int64
			if len(args) == 2 {
				n, err := parseRevision(args[1])
				if err != nil {
					return err
				}
				want = n
			}
			var target v1alpha1.Revision
			rctx, cancel := requestContext(cmd)
			defer cancel()
			sub, err := change(rctx, c, ns, args[0], func(sub *v1alpha1.Subscription) error {
				revs, err := listRevisions(rctx, c, sub)
				if err != nil {
					return err
				}
				r, err := rollbackTarget(sub, revs, want)
				if err != nil {
					return err
				}
				target = r
				sub.Spec.RollbackTo = &v1alpha1.RollbackTarget{Revision: r.Spec.Revision}
				return nil
			})
			if err != nil {
				return err
			}
			n := target.Spec.Revision
			fmt.Fprintf(a.out, "Subscription %s/%s: rolling back to revision %d (%s)\n", sub.Namespace, sub.Name, n, target.Spec.Version)
			if !w.wait {
				return nil
			}
			what := fmt.Sprintf("the rollback of %s/%s to revision %d (%s)", sub.Namespace, sub.Name, n, target.Spec.Version)
			return a.waitFor(cmd.Context(), c, client.ObjectKeyFromObject(sub), sub.Generation, w.timeout, what,
				func(ctx context.Context, s *v1alpha1.Subscription) verdict {
					if why := stopped(s); why != "" {
						return verdict{done: true, err: &OutcomeError{Subscription: key(s), What: fmt.Sprintf("rollback to revision %d", n), Reason: why}}
					}
					revs, err := listRevisions(ctx, c, s)
					if err != nil {
						return verdict{progress: err.Error()}
					}
					for _, r := range revs {
						if r.Spec.Revision != s.Status.CurrentRevision || r.Spec.RollbackOf != n {
							continue
						}
						switch r.Status.Outcome {
						case v1alpha1.OutcomeHealthy:
							return verdict{done: true}
						case v1alpha1.OutcomeFailed, v1alpha1.OutcomeRolledBack, v1alpha1.OutcomeSuperseded:
							return verdict{done: true, err: &OutcomeError{Subscription: key(s), What: fmt.Sprintf("rollback to revision %d", n),
								Reason: fmt.Sprintf("revision %d is %s: %s", r.Spec.Revision, r.Status.Outcome, orDefault(r.Status.Message, "no message"))}}
						}
						return verdict{progress: fmt.Sprintf("revision %d restores revision %d: %s", r.Spec.Revision, n, progressOf(s))}
					}
					return verdict{progress: progressOf(s)}
				})
		},
	}
	addWaitFlags(cmd, &w)
	return cmd
}

func parseRevision(s string) (int64, error) {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 1 || fmt.Sprint(n) != s {
		return 0, fmt.Errorf("revision %q: not a revision number (1, 2, 3 ...; see kubectl ferry history)", s)
	}
	return n, nil
}

// rollbackTarget picks the revision to restore: want, or the newest healthy
// revision before the current one. It refuses a revision that is not kept,
// is the current one, or that the installer did not record (it would refuse
// it as untrusted).
func rollbackTarget(sub *v1alpha1.Subscription, revs []v1alpha1.Revision, want int64) (v1alpha1.Revision, error) {
	name := key(sub)
	cur := sub.Status.CurrentRevision
	var pick *v1alpha1.Revision
	if want == 0 {
		for i := len(revs) - 1; i >= 0; i-- {
			r := &revs[i]
			if r.Status.Outcome == v1alpha1.OutcomeHealthy && r.Spec.Revision < cur && r.Spec.Version != "" {
				pick = r
				break
			}
		}
		if pick == nil {
			return v1alpha1.Revision{}, fmt.Errorf("subscription %s has no healthy revision before the current one (revision %d) to roll back to; kept: %s", name, cur, describeRevisions(revs))
		}
	} else {
		for i := range revs {
			if revs[i].Spec.Revision == want {
				pick = &revs[i]
			}
		}
		if pick == nil {
			return v1alpha1.Revision{}, fmt.Errorf("subscription %s has no revision %d; kept: %s", name, want, describeRevisions(revs))
		}
		if want == cur && sub.Spec.RollbackTo == nil {
			return v1alpha1.Revision{}, fmt.Errorf("revision %d (%s) is the current revision of Subscription %s: nothing to roll back", want, pick.Spec.Version, name)
		}
	}
	recorded := ""
	for _, d := range sub.Status.RevisionDigests {
		if d.Revision == pick.Spec.Revision {
			recorded = d.ContentDigest
		}
	}
	switch {
	case recorded == "":
		return v1alpha1.Revision{}, fmt.Errorf("revision %d of Subscription %s is not recorded in status.revisionDigests: the installer did not write it and would refuse it (%s)", pick.Spec.Revision, name, v1alpha1.ReasonRevisionUntrusted)
	case recorded != pick.Spec.ContentDigest:
		return v1alpha1.Revision{}, fmt.Errorf("revision %d of Subscription %s has content digest %s but the installer recorded %s: it would refuse it (%s)", pick.Spec.Revision, name, pick.Spec.ContentDigest, recorded, v1alpha1.ReasonRevisionUntrusted)
	}
	return *pick, nil
}

// describeRevisions lists revisions for messages: "1 (1.0.0, Healthy), 2 (1.1.0, RolledBack)".
func describeRevisions(revs []v1alpha1.Revision) string {
	if len(revs) == 0 {
		return "none"
	}
	parts := make([]string, len(revs))
	for i, r := range revs {
		parts[i] = fmt.Sprintf("%d (%s, %s)", r.Spec.Revision, r.Spec.Version, orDefault(string(r.Status.Outcome), "no outcome"))
	}
	return strings.Join(parts, ", ")
}

func (a *app) unpinCommand() *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:               "unpin SUBSCRIPTION",
		Short:             "Let a rolled-back Subscription upgrade again (removes spec.rollbackTo)",
		Example:           `  kubectl ferry unpin lighthouse-operator -n lighthouse --wait`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeSubscriptions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			rctx, cancel := requestContext(cmd)
			defer cancel()
			var was int64
			sub, err := change(rctx, c, ns, args[0], func(sub *v1alpha1.Subscription) error {
				if sub.Spec.RollbackTo == nil {
					return fmt.Errorf("subscription %s is not pinned: spec.rollbackTo is not set", key(sub))
				}
				was = sub.Spec.RollbackTo.Revision
				sub.Spec.RollbackTo = nil
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Subscription %s/%s: no longer pinned to revision %d\n", sub.Namespace, sub.Name, was)
			if !w.wait {
				return nil
			}
			return a.waitFor(cmd.Context(), c, client.ObjectKeyFromObject(sub), sub.Generation, w.timeout,
				fmt.Sprintf("Subscription %s/%s to resolve again", sub.Namespace, sub.Name),
				func(_ context.Context, s *v1alpha1.Subscription) verdict {
					if why := stopped(s); why != "" {
						return verdict{done: true, err: &OutcomeError{Subscription: key(s), What: "unpinning", Reason: why}}
					}
					if c := condition(s, v1alpha1.TypeResolved); c != nil && c.Reason != v1alpha1.ReasonPinned {
						return verdict{done: true}
					}
					return verdict{progress: progressOf(s)}
				})
		},
	}
	addWaitFlags(cmd, &w)
	return cmd
}

func (a *app) pauseCommand(pause bool) *cobra.Command {
	var w waitFlags
	use, short, done := "resume", "Resume upgrades and drift correction (sets spec.paused to false)", "resumed"
	if pause {
		use, short, done = "pause", "Stop every change to the installed operator (sets spec.paused)", "paused"
	}
	cmd := &cobra.Command{
		Use:               use + " SUBSCRIPTION",
		Short:             short,
		Example:           fmt.Sprintf("  kubectl ferry %s lighthouse-operator -n lighthouse --wait", use),
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeSubscriptions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			rctx, cancel := requestContext(cmd)
			defer cancel()
			sub, err := change(rctx, c, ns, args[0], func(sub *v1alpha1.Subscription) error {
				sub.Spec.Paused = pause
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Subscription %s/%s: %s\n", sub.Namespace, sub.Name, done)
			if !w.wait {
				return nil
			}
			return a.waitFor(cmd.Context(), c, client.ObjectKeyFromObject(sub), sub.Generation, w.timeout,
				fmt.Sprintf("Subscription %s/%s to be %s", sub.Namespace, sub.Name, done),
				func(_ context.Context, s *v1alpha1.Subscription) verdict {
					if (s.Status.State == v1alpha1.StatePaused) == pause {
						return verdict{done: true}
					}
					return verdict{progress: progressOf(s)}
				})
		},
	}
	addWaitFlags(cmd, &w)
	return cmd
}

func key(sub *v1alpha1.Subscription) string { return sub.Namespace + "/" + sub.Name }
