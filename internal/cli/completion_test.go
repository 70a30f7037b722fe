package cli_test

import (
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/cli"
)

func TestCompletion(t *testing.T) {
	ns := namespace(t, "completion")
	create(t, lighthouse(ns))
	create(t, beacon(ns))

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{name: "bash", args: []string{"completion", "bash"}, want: []string{"__start_kubectl-ferry", "complete -o default -F __start_kubectl-ferry kubectl-ferry"}},
		{name: "zsh", args: []string{"completion", "zsh"}, want: []string{"#compdef kubectl-ferry", "compdef _kubectl-ferry kubectl-ferry"}},
		{name: "kubectl plugin hook", args: []string{"completion", "plugin"}, want: []string{cli.PluginCompletionScript}},
		{name: "subscription names", args: []string{"__complete", "-n", ns, "status", "light"}, want: []string{"lighthouse-operator\n:4\n"}},
		{name: "commands", args: []string{"__complete", "ro"}, want: []string{"rollback\t"}},
		{name: "output formats", args: []string{"__complete", "list", "-o", ""}, want: []string{"json\nyaml\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := mustRun(t, tc.args...).out
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not hold %q:\n%s", w, out)
				}
			}
		})
	}
	wantError(t, []string{"completion", "fish"}, `completion "fish": unknown shell (want bash, zsh or plugin)`)
}
