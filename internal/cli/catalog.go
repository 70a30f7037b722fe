package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogsource"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// catalogConn is a connection to the catalogd of one CatalogSource.
type catalogConn struct {
	source *v1alpha1.CatalogSource
	client *catalogsource.Client
}

func (cc *catalogConn) Close() error { return cc.client.Close() }

// wrap names the catalog in a failed call's error and explains TLS
// handshake failures and unreachable servers.
func (cc *catalogConn) wrap(call string, err error) error {
	err = cc.client.Explain(err)
	msg := fmt.Sprintf("catalog %q at %s: %s", cc.source.Name, cc.client.Address(), call)
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable {
		return fmt.Errorf("%s: catalogd is not reachable from here (%s); reach it through kubectl port-forward and --catalog-address", msg, st.Message())
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// getCatalogSource reads a CatalogSource; a missing one is a *NotFoundError
// naming the CatalogSources there are.
func getCatalogSource(ctx context.Context, c client.Client, name string) (*v1alpha1.CatalogSource, error) {
	cs := &v1alpha1.CatalogSource{}
	err := c.Get(ctx, client.ObjectKey{Name: name}, cs)
	if apierrors.IsNotFound(err) {
		nf := &NotFoundError{Kind: "CatalogSource", Name: name}
		if all, lerr := listCatalogSources(ctx, c); lerr == nil {
			for _, s := range all {
				nf.Known = append(nf.Known, s.Name)
			}
		}
		return nil, nf
	}
	if err != nil {
		return nil, fmt.Errorf("reading CatalogSource %s: %w", name, err)
	}
	return cs, nil
}

// listCatalogSources lists every CatalogSource, highest priority first,
// then by name: the order the installer searches them in.
func listCatalogSources(ctx context.Context, c client.Client) ([]v1alpha1.CatalogSource, error) {
	var list v1alpha1.CatalogSourceList
	if err := c.List(ctx, &list, client.Limit(listPageSize)); err != nil {
		return nil, fmt.Errorf("listing CatalogSources: %w", err)
	}
	slices.SortFunc(list.Items, func(x, y v1alpha1.CatalogSource) int {
		if x.Spec.Priority != y.Spec.Priority {
			return int(y.Spec.Priority - x.Spec.Priority)
		}
		return strings.Compare(x.Name, y.Name)
	})
	return list.Items, nil
}

// dialCatalog connects to a CatalogSource's catalogd as the installer does:
// the TLS settings of spec.tls, with the Secrets and ConfigMaps they name
// read from --catalog-tls-namespace only. With --catalog-address the
// connection goes there, and the certificate is still checked against the
// host of spec.address (or spec.tls.serverName).
func (a *app) dialCatalog(ctx context.Context, c client.Client, cs *v1alpha1.CatalogSource) (*catalogConn, error) {
	sec, err := catalogsource.SecurityFor(ctx, c, a.tlsNamespace, cs.Spec.TLS)
	if err != nil {
		return nil, fmt.Errorf("CatalogSource %s: %w", cs.Name, err)
	}
	addr := cs.Spec.Address
	if a.catalogAddr != "" {
		if _, _, err := net.SplitHostPort(a.catalogAddr); err != nil {
			return nil, fmt.Errorf("--catalog-address %q: not host:port: %w", a.catalogAddr, err)
		}
		addr = a.catalogAddr
		if !sec.Plaintext && sec.TLS != nil && sec.TLS.ServerName == "" {
			host, _, err := net.SplitHostPort(cs.Spec.Address)
			if err != nil {
				return nil, fmt.Errorf("CatalogSource %s: spec.address %q: %w", cs.Name, cs.Spec.Address, err)
			}
			s := *sec
			s.TLS = sec.TLS.Clone()
			s.TLS.ServerName = host
			sec = &s
		}
	}
	cl, err := catalogsource.Dial(addr, catalogsource.WithSecurity(sec))
	if err != nil {
		return nil, fmt.Errorf("CatalogSource %s: %w", cs.Name, err)
	}
	return &catalogConn{source: cs, client: cl}, nil
}

// catalogsFor returns the CatalogSource named, or every one when name is empty.
func catalogsFor(ctx context.Context, c client.Client, name string) ([]v1alpha1.CatalogSource, error) {
	if name != "" {
		cs, err := getCatalogSource(ctx, c, name)
		if err != nil {
			return nil, err
		}
		return []v1alpha1.CatalogSource{*cs}, nil
	}
	all, err := listCatalogSources(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, errors.New("there is no CatalogSource in the cluster")
	}
	return all, nil
}

func (a *app) catalogCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Search and show the packages of the catalogs CatalogSources point at",
	}
	cmd.AddCommand(a.catalogSearchCommand(), a.catalogShowCommand())
	return cmd
}

// searchResult is one package found by catalog search.
type searchResult struct {
	// Catalog is the CatalogSource.
	Catalog string `json:"catalog"`
	// Package is the package's summary as the catalog serves it.
	Package json.RawMessage `json:"package"`
	summary *catalogv1.PackageSummary
}

func (a *app) catalogSearchCommand() *cobra.Command {
	var format, catalogName string
	cmd := &cobra.Command{
		Use:   "search [TEXT]",
		Short: "List the packages whose name contains TEXT (all without TEXT)",
		Example: `  kubectl ferry catalog search light
  kubectl ferry catalog search --catalog ferry-samples -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := requestContext(cmd)
			defer cancel()
			c, err := a.client()
			if err != nil {
				return err
			}
			text := ""
			if len(args) == 1 {
				text = strings.ToLower(args[0])
			}
			sources, err := catalogsFor(ctx, c, catalogName)
			if err != nil {
				return err
			}
			var found []searchResult
			var errs []error
			for i := range sources {
				cc, err := a.dialCatalog(ctx, c, &sources[i])
				if err != nil {
					errs = append(errs, err)
					continue
				}
				resp, err := cc.client.CatalogService().ListPackages(ctx, &catalogv1.ListPackagesRequest{})
				if err != nil {
					errs = append(errs, cc.wrap("ListPackages", err))
					_ = cc.Close()
					continue
				}
				_ = cc.Close()
				for _, p := range resp.GetPackages() {
					if text != "" && !strings.Contains(strings.ToLower(p.GetName()), text) {
						continue
					}
					raw, err := protojson.Marshal(p)
					if err != nil {
						return err
					}
					found = append(found, searchResult{Catalog: sources[i].Name, Package: raw, summary: p})
				}
			}
			if format != formatTable {
				if err := printData(a.out, format, found); err != nil {
					return err
				}
				return errors.Join(errs...)
			}
			if len(found) == 0 {
				if len(errs) == 0 {
					fmt.Fprintf(a.errOut, "No package matches %q.\n", text)
				}
				return errors.Join(errs...)
			}
			t := newTable(a.out, "CATALOG", "PACKAGE", "DEFAULT CHANNEL", "LATEST", "CHANNELS", "BUNDLES", "DEPRECATED")
			for _, f := range found {
				p := f.summary
				dep := ""
				if d := p.GetDeprecation(); d != nil {
					dep = clip(d.GetMessage(), maxMessageWidth)
				}
				t.row(f.Catalog, p.GetName(), p.GetDefaultChannel(), p.GetLatestVersion(), strings.Join(p.GetChannels(), ","), fmt.Sprint(p.GetBundleCount()), dep)
			}
			if err := t.flush(); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&catalogName, "catalog", "", "CatalogSource to search (default: every one)")
	addOutputFlag(cmd, &format)
	return cmd
}

func (a *app) catalogShowCommand() *cobra.Command {
	var format, catalogName string
	cmd := &cobra.Command{
		Use:   "show PACKAGE",
		Short: "Show a package: channels, their versions and upgrade edges, deprecations",
		Example: `  kubectl ferry catalog show lighthouse-operator
  kubectl ferry catalog show lighthouse-operator --catalog ferry-samples -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := requestContext(cmd)
			defer cancel()
			c, err := a.client()
			if err != nil {
				return err
			}
			sources, err := catalogsFor(ctx, c, catalogName)
			if err != nil {
				return err
			}
			var errs []error
			var searched []string
			for i := range sources {
				searched = append(searched, sources[i].Name)
				cc, err := a.dialCatalog(ctx, c, &sources[i])
				if err != nil {
					errs = append(errs, err)
					continue
				}
				p, err := cc.client.CatalogService().GetPackage(ctx, &catalogv1.GetPackageRequest{Name: args[0]})
				_ = cc.Close()
				if status.Code(err) == codes.NotFound {
					continue
				}
				if err != nil {
					errs = append(errs, cc.wrap("GetPackage", err))
					continue
				}
				if format != formatTable {
					return printProto(a.out, format, p)
				}
				return writePackage(a.out, sources[i].Name, p)
			}
			nf := &NotFoundError{Kind: "package", Name: args[0], Where: "catalog " + strings.Join(quoteAll(searched), ", ")}
			return errors.Join(append([]error{nf}, errs...)...)
		},
	}
	cmd.Flags().StringVar(&catalogName, "catalog", "", "CatalogSource to read (default: the first, by priority, that has the package)")
	addOutputFlag(cmd, &format)
	return cmd
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// printProto writes a catalog message as JSON (protojson, field names as
// in the proto) or YAML.
func printProto(w interface{ Write([]byte) (int, error) }, format string, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	if format == formatYAML {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writePackage is the human view of a package.
func writePackage(w interface{ Write([]byte) (int, error) }, catalog string, p *catalogv1.Package) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-17s %s\n", "Package:", p.GetName())
	fmt.Fprintf(&b, "%-17s %s\n", "Catalog:", catalog)
	fmt.Fprintf(&b, "%-17s %s\n", "Default channel:", p.GetDefaultChannel())
	if d := p.GetDescription(); d != "" {
		fmt.Fprintf(&b, "%-17s %s\n", "Description:", firstParagraph(d))
	}
	if d := p.GetDeprecation(); d != nil {
		fmt.Fprintf(&b, "%-17s %s\n", "Deprecated:", d.GetMessage())
	}
	for _, ch := range p.GetChannels() {
		head := ch.GetHeadVersion()
		fmt.Fprintf(&b, "\nChannel %s (head %s)", ch.GetName(), orDefault(head, ch.GetHead()))
		if d := ch.GetDeprecation(); d != nil {
			fmt.Fprintf(&b, ", deprecated: %s", d.GetMessage())
		}
		b.WriteString(":\n")
		if _, err := w.Write([]byte(b.String())); err != nil {
			return err
		}
		b.Reset()
		t := newTable(w, "  VERSION", "BUNDLE", "UPGRADES FROM", "DEPRECATED")
		for _, e := range ch.GetEntries() {
			var from []string
			if r := e.GetReplaces(); r != "" {
				from = append(from, "replaces "+r)
			}
			if s := e.GetSkips(); len(s) > 0 {
				from = append(from, "skips "+strings.Join(s, ","))
			}
			if r := e.GetSkipRange(); r != "" {
				from = append(from, "skipRange "+r)
			}
			dep := ""
			if d := e.GetDeprecation(); d != nil {
				dep = clip(d.GetMessage(), maxMessageWidth)
			}
			t.row("  "+e.GetVersion(), e.GetName(), strings.Join(from, "; "), dep)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	_, err := w.Write([]byte(b.String()))
	return err
}

// firstParagraph is the first paragraph of a description, on one line.
func firstParagraph(s string) string {
	para, _, _ := strings.Cut(strings.TrimSpace(s), "\n\n")
	return clip(strings.Join(strings.Fields(para), " "), 300)
}
