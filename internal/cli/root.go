package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogsource"
)

// Defaults of the flags and options.
const (
	// DefaultTimeout bounds --wait.
	DefaultTimeout = 10 * time.Minute
	// DefaultPollInterval is how often --wait reads the Subscription.
	DefaultPollInterval = time.Second
	// DefaultRequestTimeout bounds commands that do not wait.
	DefaultRequestTimeout = 2 * time.Minute
	// PluginName is the name kubectl finds the plugin by.
	PluginName = "kubectl-ferry"
)

// Option configures New.
type Option func(*app)

// WithStreams sets the output and error streams (default os.Stdout and
// os.Stderr). Progress goes to errOut; a spinner is drawn only when errOut
// is a terminal.
func WithStreams(out, errOut io.Writer) Option {
	return func(a *app) { a.out, a.errOut = out, errOut }
}

// WithPollInterval sets how often --wait reads the Subscription.
func WithPollInterval(d time.Duration) Option { return func(a *app) { a.poll = d } }

// WithRESTConfigHook changes the REST configuration built from the
// kubeconfig flags before it is used (tests lower the client's rate limits
// this way; nil does nothing).
func WithRESTConfigHook(f func(*rest.Config)) Option { return func(a *app) { a.restHook = f } }

// app is the state shared by the commands of one invocation.
type app struct {
	out, errOut io.Writer
	poll        time.Duration
	restHook    func(*rest.Config)

	kube          *genericclioptions.ConfigFlags
	allNamespaces bool
	tlsNamespace  string
	catalogAddr   string

	cl     client.Client
	scheme *runtime.Scheme
}

// New returns the kubectl-ferry command.
func New(opts ...Option) *cobra.Command {
	a := &app{out: os.Stdout, errOut: os.Stderr, poll: DefaultPollInterval}
	for _, o := range opts {
		o(a)
	}
	a.kube = genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   PluginName,
		Short: "Day 2 operations on Ferry Subscriptions",
		Long: `kubectl ferry shows and changes Ferry Subscriptions: what is installed, why an
upgrade waits, what it would change; it approves, rolls back, unpins, pauses and
resumes them.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl ferry",
		},
	}
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	a.kube.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&a.tlsNamespace, "catalog-tls-namespace", catalogsource.DefaultTLSNamespace,
		"namespace of the Secrets and ConfigMaps a CatalogSource's spec.tls names (the installer's namespace)")
	root.PersistentFlags().StringVar(&a.catalogAddr, "catalog-address", "",
		"host:port to reach catalogd at instead of the CatalogSource's spec.address (e.g. through kubectl port-forward); the certificate is still checked against the name in spec.address or spec.tls.serverName")
	_ = root.RegisterFlagCompletionFunc("namespace", a.completeNamespaces)

	root.AddCommand(
		a.listCommand(),
		a.statusCommand(),
		a.historyCommand(),
		a.diffCommand(),
		a.approveCommand(),
		a.rollbackCommand(),
		a.unpinCommand(),
		a.pauseCommand(true),
		a.pauseCommand(false),
		a.catalogCommand(),
		a.completionCommand(root),
	)
	return root
}

// Main runs the command with os.Args and returns the exit code.
func Main(ctx context.Context, opts ...Option) int {
	// controller-runtime's client logs nothing a person needs here, and
	// warns on stderr when no logger is set.
	ctrllog.SetLogger(logr.Discard())
	cmd := New(opts...)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "error: "+err.Error())
	return 1
}

// restConfig is the REST configuration of the kubeconfig flags.
func (a *app) restConfig() (*rest.Config, error) {
	cfg, err := a.kube.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = PluginName
	if a.restHook != nil {
		a.restHook(cfg)
	}
	return cfg, nil
}

// client returns the API client, made once.
func (a *app) client() (client.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	cfg, err := a.restConfig()
	if err != nil {
		return nil, err
	}
	s := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(s), apiextensionsv1.AddToScheme(s), v1alpha1.AddToScheme(s)); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	a.cl, a.scheme = c, s
	return c, nil
}

// namespace is the namespace of -n, else the kubeconfig context's.
func (a *app) namespace() (string, error) {
	ns, _, err := a.kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// clientAndNamespace returns the client and the namespace of -n.
func (a *app) clientAndNamespace() (client.Client, string, error) {
	c, err := a.client()
	if err != nil {
		return nil, "", err
	}
	ns, err := a.namespace()
	if err != nil {
		return nil, "", err
	}
	return c, ns, nil
}

// requestContext bounds a command that does not wait.
func requestContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), DefaultRequestTimeout)
}
