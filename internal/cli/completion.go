package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// completionTimeout bounds the API calls made while completing.
const completionTimeout = 5 * time.Second

// Shells and scripts of the completion command.
const (
	shellBash = "bash"
	shellZsh  = "zsh"
	// scriptPlugin is kubectl's completion hook for the plugin.
	scriptPlugin = "plugin"
)

// PluginCompletionScript is kubectl_complete-ferry: kubectl (1.26 and
// later) runs it to complete `kubectl ferry ...` when it is on the PATH.
const PluginCompletionScript = `#!/usr/bin/env sh
# kubectl runs this to complete "kubectl ferry ...": keep it on the PATH.
exec kubectl-ferry __complete "$@"
`

func (a *app) completionCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|plugin",
		Short: "Print a shell completion script",
		Long: `completion prints a completion script.

  bash, zsh: completion for kubectl-ferry run by its own name;
  plugin:    kubectl_complete-ferry, with which kubectl 1.26 and later
             completes "kubectl ferry ..." in every shell kubectl completes.`,
		Example: `  # "kubectl ferry <TAB>": the plugin hook on the PATH, next to kubectl-ferry
  kubectl ferry completion plugin > ~/.local/bin/kubectl_complete-ferry
  chmod +x ~/.local/bin/kubectl_complete-ferry

  # "kubectl-ferry <TAB>"
  source <(kubectl ferry completion bash)
  kubectl ferry completion zsh > "${fpath[1]}/_kubectl-ferry"`,
		Args:                  cobra.ExactArgs(1),
		ValidArgs:             []string{shellBash, shellZsh, scriptPlugin},
		DisableFlagsInUseLine: true,
		RunE: func(_ *cobra.Command, args []string) error {
			switch args[0] {
			case shellBash:
				return root.GenBashCompletionV2(a.out, true)
			case shellZsh:
				return root.GenZshCompletion(a.out)
			case scriptPlugin:
				_, err := fmt.Fprint(a.out, PluginCompletionScript)
				return err
			}
			return fmt.Errorf("completion %q: unknown shell (want %s, %s or %s)", args[0], shellBash, shellZsh, scriptPlugin)
		},
	}
}

// completeSubscriptions completes the first argument with the names of
// the namespace's Subscriptions.
func (a *app) completeSubscriptions(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	c, ns, err := a.clientAndNamespace()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var list v1alpha1.SubscriptionList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.Limit(listPageSize)); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, s := range list.Items {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeNamespaces completes -n.
func (a *app) completeNamespaces(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var list corev1.NamespaceList
	if err := c.List(ctx, &list, client.Limit(listPageSize)); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range list.Items {
		if strings.HasPrefix(n.Name, prefix) {
			out = append(out, n.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
