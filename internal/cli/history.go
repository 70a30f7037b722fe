package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

func (a *app) historyCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "history SUBSCRIPTION",
		Short: "List a Subscription's revisions: version, reason, outcome, time",
		Example: `  kubectl ferry history lighthouse-operator -n lighthouse
  kubectl ferry history lighthouse-operator -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeSubscriptions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := requestContext(cmd)
			defer cancel()
			c, ns, err := a.clientAndNamespace()
			if err != nil {
				return err
			}
			sub, err := getSubscription(ctx, c, ns, args[0])
			if err != nil {
				return err
			}
			revs, err := listRevisions(ctx, c, sub)
			if err != nil {
				return err
			}
			if format != formatTable {
				list := &v1alpha1.RevisionList{Items: revs}
				list.SetGroupVersionKind(listKind(v1alpha1.GroupVersion, "Revision"))
				for i := range list.Items {
					withKind(a.scheme, &list.Items[i])
				}
				return printData(a.out, format, list)
			}
			if len(revs) == 0 {
				fmt.Fprintf(a.errOut, "Subscription %s/%s has no revisions yet.\n", sub.Namespace, sub.Name)
				return nil
			}
			t := newTable(a.out, "REVISION", "VERSION", "REASON", "OUTCOME", "STARTED", "FINISHED", "MESSAGE")
			for _, r := range revs {
				num := fmt.Sprint(r.Spec.Revision)
				if r.Spec.Revision == sub.Status.CurrentRevision {
					num += " (current)"
				}
				reason := r.Spec.Reason
				if r.Spec.RollbackOf > 0 {
					reason = fmt.Sprintf("%s of %d", orDefault(reason, "Rollback"), r.Spec.RollbackOf)
				}
				t.row(num, r.Spec.Version, reason, string(r.Status.Outcome), timePtr(r.Status.StartedAt), timePtr(r.Status.FinishedAt), clip(r.Status.Message, maxMessageWidth))
			}
			return t.flush()
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func timePtr(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return timeString(*t)
}
