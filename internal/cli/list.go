package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

func (a *app) listCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List Subscriptions: package, channel, installed and latest version, state, message",
		Example: `  kubectl ferry list
  kubectl ferry list -A
  kubectl ferry list -n lighthouse -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := requestContext(cmd)
			defer cancel()
			c, err := a.client()
			if err != nil {
				return err
			}
			ns := ""
			if !a.allNamespaces {
				if ns, err = a.namespace(); err != nil {
					return err
				}
			}
			subs, err := listSubscriptions(ctx, c, ns)
			if err != nil {
				return err
			}
			if format != formatTable {
				list := &v1alpha1.SubscriptionList{Items: subs}
				list.SetGroupVersionKind(listKind(v1alpha1.GroupVersion, "Subscription"))
				for i := range list.Items {
					withKind(a.scheme, &list.Items[i])
				}
				return printData(a.out, format, list)
			}
			if len(subs) == 0 {
				if a.allNamespaces {
					fmt.Fprintln(a.errOut, "No Subscriptions found.")
				} else {
					fmt.Fprintf(a.errOut, "No Subscriptions found in namespace %s.\n", ns)
				}
				return nil
			}
			header := []string{"NAME", "PACKAGE", "CHANNEL", "INSTALLED", "LATEST", "STATE", "MESSAGE"}
			if a.allNamespaces {
				header = append([]string{"NAMESPACE"}, header...)
			}
			t := newTable(a.out, header...)
			for i := range subs {
				s := &subs[i]
				row := []string{s.Name, s.Spec.Package, s.Spec.Channel, s.Status.InstalledVersion, s.Status.LatestVersion, string(s.Status.State), clip(summary(s), maxMessageWidth)}
				if a.allNamespaces {
					row = append([]string{s.Namespace}, row...)
				}
				t.row(row...)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVarP(&a.allNamespaces, "all-namespaces", "A", false, "list the Subscriptions of every namespace")
	addOutputFlag(cmd, &format)
	return cmd
}
