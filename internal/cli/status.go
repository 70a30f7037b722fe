package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

func (a *app) statusCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status SUBSCRIPTION",
		Short: "Show a Subscription: versions, revision, pending and failed upgrades, why it is not upgraded, conditions",
		Example: `  kubectl ferry status lighthouse-operator -n lighthouse
  kubectl ferry status lighthouse-operator -o json`,
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
			if format != formatTable {
				withKind(a.scheme, sub)
				return printData(a.out, format, sub)
			}
			return writeStatus(a.out, sub)
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

// writeStatus is the human view of a Subscription.
func writeStatus(w io.Writer, sub *v1alpha1.Subscription) error {
	st, sp := sub.Status, sub.Spec
	var b strings.Builder
	field := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "%-18s %s\n", name+":", fmt.Sprintf(format, args...))
	}
	field("Subscription", "%s/%s", sub.Namespace, sub.Name)
	pkg := sp.Package
	var from []string
	if cat := orDefault(sp.Catalog, st.Catalog); cat != "" {
		from = append(from, "catalog "+cat)
	}
	from = append(from, "channel "+orDefault(sp.Channel, "(default)"))
	if sp.VersionRange != "" {
		from = append(from, "range "+sp.VersionRange)
	}
	field("Package", "%s (%s)", pkg, strings.Join(from, ", "))
	field("Approval", "%s", orDefault(string(sp.Approval), string(v1alpha1.ApprovalAutomatic)))
	field("State", "%s", orDefault(string(st.State), "(not reported yet)"))
	installed := orDefault(st.InstalledVersion, "none")
	if st.InstalledVersion != "" {
		var details []string
		if st.InstalledBundle != "" {
			details = append(details, st.InstalledBundle)
		}
		if st.CurrentRevision > 0 {
			details = append(details, fmt.Sprintf("revision %d", st.CurrentRevision))
		}
		if len(details) > 0 {
			installed += " (" + strings.Join(details, ", ") + ")"
		}
	}
	field("Installed", "%s", installed)
	field("Latest", "%s", orDefault(st.LatestVersion, "-"))
	if st.TargetVersion != "" && st.TargetVersion != st.InstalledVersion {
		field("Target", "%s", st.TargetVersion)
	}
	if gen, seen := sub.Generation, observedGeneration(sub); seen < gen {
		field("Observed", "generation %d of %d: the installer has not acted on the latest change yet", seen, gen)
	}
	if u := st.AvailableUpgrade; u != nil {
		edge := ""
		if u.Edge != "" {
			edge = ", via " + u.Edge
		}
		field("Pending upgrade", "%s (%s%s): approve with kubectl ferry approve %s -n %s", u.Version, u.Bundle, edge, sub.Name, sub.Namespace)
		for _, c := range u.Changes {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	if f := st.FailedUpgrade; f != nil {
		field("Failed upgrade", "%s (%s, revision %d) at %s: %s", f.Version, f.Bundle, f.Revision, timeString(f.Time), f.Reason)
	}
	if why := whyNotUpgraded(sub); len(why) > 0 {
		fmt.Fprintf(&b, "Why not upgraded:\n")
		for _, r := range why {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(st.Conditions) == 0 {
		_, err := fmt.Fprintln(w, "Conditions:        none reported yet")
		return err
	}
	fmt.Fprintln(w, "Conditions:")
	t := newTable(w, "  TYPE", "STATUS", "REASON", "GENERATION", "SINCE", "MESSAGE")
	for _, c := range st.Conditions {
		t.row("  "+c.Type, string(c.Status), c.Reason, fmt.Sprint(c.ObservedGeneration), timeString(c.LastTransitionTime), c.Message)
	}
	return t.flush()
}

// whyNotUpgraded lists what the status and spec say keeps a Subscription
// from its latest version, in the installer's words.
func whyNotUpgraded(sub *v1alpha1.Subscription) []string {
	st, sp := sub.Status, sub.Spec
	var out []string
	if sp.Paused {
		out = append(out, "spec.paused is true: nothing is changed (kubectl ferry resume "+sub.Name+")")
	}
	if sp.RollbackTo != nil {
		out = append(out, fmt.Sprintf("spec.rollbackTo pins revision %d: no upgrade happens while it is set", sp.RollbackTo.Revision))
	}
	if st.Explanation != "" {
		out = append(out, st.Explanation)
	}
	for _, t := range []string{v1alpha1.TypeResolved, v1alpha1.TypeCRDUpgradeSafe, v1alpha1.TypeCatalogReachable} {
		if c := condition(sub, t); c != nil && c.Status == metav1.ConditionFalse && c.Message != "" && c.Message != st.Explanation {
			out = append(out, fmt.Sprintf("%s=False (%s): %s", c.Type, c.Reason, c.Message))
		}
	}
	if u := st.AvailableUpgrade; u != nil {
		out = append(out, fmt.Sprintf("approval is Manual: %s waits until spec.approvedVersion names it", u.Version))
	}
	if f := st.FailedUpgrade; f != nil && (st.LatestVersion == "" || st.LatestVersion == f.Version) {
		out = append(out, fmt.Sprintf("%s failed its health gate and is not retried until a newer version appears or the annotation operators.ferry.dev/retry-upgrade names it", f.Version))
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// timeString prints a time in UTC, "-" when unset.
func timeString(t metav1.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
