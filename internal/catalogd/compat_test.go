package catalogd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// compatCatalog is a catalog written the way `opm render` writes one
// (indented JSON; YAML documents; deprecations in a YAML file whose last
// value is a block scalar and which has no final newline), plus what hand
// edits add: keys out of order, escaped characters, numbers written 1.50.
const compatCatalog = "testdata/compat/catalog"

// compatAnswer is a golden answer: the status code and the messages, each
// rendered by protojson for review.
type compatAnswer struct {
	Code     string            `json:"code"`
	Messages []json.RawMessage `json:"messages,omitempty"`
}

// TestRegistryWireCompat checks every api.Registry and
// api.ExperimentalRegistry answer over compatCatalog against
// testdata/compat/<case>.json, byte for byte on the wire: the golden
// messages are parsed back and both sides are encoded with deterministic
// proto marshalling, so a string field that differs in a single byte
// (whitespace or key order inside a property value, a final newline) fails,
// where comparing JSON documents would call it equivalent. Only the code of
// an error is compared, not its text.
//
// The catalog is checked as parsed and as read back from its on-disk index:
// both must answer the same bytes.
func TestRegistryWireCompat(t *testing.T) {
	t.Run("parsed", func(t *testing.T) { checkWireCompat(t, loadDir(t, compatCatalog)) })
	t.Run("index", func(t *testing.T) {
		if *update {
			t.Skip("golden files are written from the parsed catalog")
		}
		src := catalog.Source{Name: compatCatalog, Dir: compatCatalog, Format: catalog.FormatFBC, Fingerprint: "sha256:compat"}
		idx := catalog.WithIndex(catalog.IndexConfig{Dir: t.TempDir(), Log: testr.New(t)})
		first, err := catalog.Load(t.Context(), []catalog.Source{src}, idx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := catalog.Load(t.Context(), []catalog.Source{src}, idx)
		if err != nil {
			t.Fatal(err)
		}
		if first.FromIndex || !c.FromIndex {
			t.Fatalf("FromIndex: first load %t, second %t; want false, true", first.FromIndex, c.FromIndex)
		}
		if c.Digest != first.Digest {
			t.Fatalf("digest from the index %s, parsed %s", c.Digest, first.Digest)
		}
		checkWireCompat(t, c)
	})
}

func checkWireCompat(t *testing.T, c *catalog.Catalog) {
	if len(c.Problems) > 0 {
		t.Fatalf("the compatibility catalog has problems: %v", c.Problems)
	}
	conn := startServer(t, catalogd.NewHolder(c))
	reg := api.NewRegistryClient(conn)
	exp := api.NewExperimentalRegistryClient(conn)
	ack := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, catalogd.ExperimentalAckHeader, catalogd.ExperimentalAckValue)
	}
	custom := func(ctx context.Context, schema, pkg string) ([]proto.Message, error) {
		return streamed(exp.ExperimentalListPackageCustomSchemas(ctx, &api.ExperimentalListPackageCustomSchemasRequest{Schema: schema, PackageName: pkg}))
	}

	tests := []struct {
		name string
		typ  proto.Message
		call func(ctx context.Context) ([]proto.Message, error)
	}{
		{"ListPackages", &api.PackageName{}, func(ctx context.Context) ([]proto.Message, error) {
			return streamed(reg.ListPackages(ctx, &api.ListPackageRequest{}))
		}},
		{"GetPackage-aurora", &api.Package{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetPackage(ctx, &api.GetPackageRequest{Name: "aurora-operator"}))
		}},
		{"GetPackage-borealis", &api.Package{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetPackage(ctx, &api.GetPackageRequest{Name: "borealis-operator"}))
		}},
		{"GetPackage-unknown", &api.Package{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetPackage(ctx, &api.GetPackageRequest{Name: "no-such-operator"}))
		}},
		{"GetBundle-image", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetBundle(ctx, &api.GetBundleRequest{PkgName: "aurora-operator", ChannelName: "stable", CsvName: "aurora-operator.v1.2.0"}))
		}},
		{"GetBundle-hand-edited", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetBundle(ctx, &api.GetBundleRequest{PkgName: "aurora-operator", ChannelName: "stable", CsvName: "aurora-operator.v1.0.0"}))
		}},
		{"GetBundle-inline", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetBundle(ctx, &api.GetBundleRequest{PkgName: "borealis-operator", ChannelName: "alpha", CsvName: "borealis-operator.v0.1.0"}))
		}},
		{"GetBundleForChannel", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetBundleForChannel(ctx, &api.GetBundleInChannelRequest{PkgName: "aurora-operator", ChannelName: "fast"}))
		}},
		{"GetChannelEntriesThatReplace", &api.ChannelEntry{}, func(ctx context.Context) ([]proto.Message, error) {
			return streamed(reg.GetChannelEntriesThatReplace(ctx, &api.GetAllReplacementsRequest{CsvName: "aurora-operator.v1.1.0"}))
		}},
		{"GetChannelEntriesThatReplace-skipped", &api.ChannelEntry{}, func(ctx context.Context) ([]proto.Message, error) {
			return streamed(reg.GetChannelEntriesThatReplace(ctx, &api.GetAllReplacementsRequest{CsvName: "aurora-operator.v1.2.1"}))
		}},
		{"GetBundleThatReplaces", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetBundleThatReplaces(ctx, &api.GetReplacementRequest{CsvName: "aurora-operator.v1.1.0", PkgName: "aurora-operator", ChannelName: "stable"}))
		}},
		{"GetChannelEntriesThatProvide", &api.ChannelEntry{}, func(ctx context.Context) ([]proto.Message, error) {
			return streamed(reg.GetChannelEntriesThatProvide(ctx, &api.GetAllProvidersRequest{Group: "aurora.example.com", Version: "v1", Kind: "Aurora"}))
		}},
		{"GetLatestChannelEntriesThatProvide", &api.ChannelEntry{}, func(ctx context.Context) ([]proto.Message, error) {
			return streamed(reg.GetLatestChannelEntriesThatProvide(ctx, &api.GetLatestProvidersRequest{Group: "aurora.example.com", Version: "v1", Kind: "Aurora"}))
		}},
		{"GetDefaultBundleThatProvides", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetDefaultBundleThatProvides(ctx, &api.GetDefaultProviderRequest{Group: "borealis.example.com", Version: "v1alpha1", Kind: "Borealis"}))
		}},
		// Only the head of a channel that is not the default provides it:
		// NotFound, where operator-registry answers Unknown.
		{"GetDefaultBundleThatProvides-not-default", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return unary(reg.GetDefaultBundleThatProvides(ctx, &api.GetDefaultProviderRequest{Group: "aurora.example.com", Version: "v1beta1", Kind: "AuroraSchedule"}))
		}},
		{"ListBundles", &api.Bundle{}, func(ctx context.Context) ([]proto.Message, error) {
			return streamed(reg.ListBundles(ctx, &api.ListBundlesRequest{}))
		}},
		{"ExperimentalListPackageCustomSchemas", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "io.example.notes", "aurora-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-olm-schema", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "olm.template.basic", "aurora-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-no-package", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "io.example.notes", "")
		}},
		{"ExperimentalListPackageCustomSchemas-no-match", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "io.example.notes", "borealis-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-modelled-schema", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "olm.bundle", "aurora-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-not-acknowledged", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ctx, "io.example.notes", "aurora-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-acknowledged-otherwise", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(metadata.AppendToOutgoingContext(ctx, catalogd.ExperimentalAckHeader, "yes"), "io.example.notes", "aurora-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-empty-schema", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "", "aurora-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-bad-schema", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "io.example/notes", "aurora-operator")
		}},
		{"ExperimentalListPackageCustomSchemas-bad-package", &structpb.Struct{}, func(ctx context.Context) ([]proto.Message, error) {
			return custom(ack(ctx), "io.example.notes", "-aurora")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, callErr := tt.call(t.Context())
			ans := compatAnswer{Code: status.Code(callErr).String()}
			for _, m := range got {
				ans.Messages = append(ans.Messages, reviewJSON(t, m))
			}
			path := filepath.Join("testdata", "compat", tt.name+".json")
			if *update {
				var out bytes.Buffer
				enc := json.NewEncoder(&out)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(ans); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/catalogd -run WireCompat -update)", err)
			}
			var want compatAnswer
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if ans.Code != want.Code {
				t.Fatalf("code %s (%v), want %s", ans.Code, callErr, want.Code)
			}
			if len(got) != len(want.Messages) {
				t.Fatalf("%d messages, want %d", len(got), len(want.Messages))
			}
			for i, raw := range want.Messages {
				w := tt.typ.ProtoReflect().New().Interface()
				if err := protojson.Unmarshal(raw, w); err != nil {
					t.Fatalf("%s: message %d: %v", path, i, err)
				}
				if wb, gb := wireBytes(t, w), wireBytes(t, got[i]); !bytes.Equal(wb, gb) {
					t.Errorf("message %d differs on the wire from %s\n%s", i, path, firstDiff(raw, reviewJSON(t, got[i])))
				}
			}
		})
	}
}

// unary is a unary call's answer as a list.
func unary[T proto.Message](m T, err error) ([]proto.Message, error) {
	if err != nil {
		return nil, err
	}
	return []proto.Message{m}, nil
}

// streamed reads a server stream to its end.
func streamed[T any, PT interface {
	*T
	proto.Message
}](s interface{ Recv() (*T, error) }, err error) ([]proto.Message, error) {
	if err != nil {
		return nil, err
	}
	got, err := recvAll[T](s)
	out := make([]proto.Message, 0, len(got))
	for _, m := range got {
		out = append(out, PT(m))
	}
	return out, err
}

// wireBytes is m as a client receives it, in deterministic form (map
// entries of a Struct sorted).
func wireBytes(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reviewJSON renders m for the golden file: protojson, whose whitespace
// varies on purpose, re-indented; strings are untouched.
func reviewJSON(t *testing.T, m proto.Message) json.RawMessage {
	t.Helper()
	raw, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "    ", "  "); err != nil {
		t.Fatal(fmt.Errorf("indenting %s: %w", raw, err))
	}
	return buf.Bytes()
}
