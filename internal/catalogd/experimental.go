package catalogd

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/proto/api"
)

// ExperimentalAckHeader is the metadata key a client of api.ExperimentalRegistry
// sets to ExperimentalAckValue to say it accepts an unstable API. Without it
// every call answers an empty stream, as operator-registry does.
const (
	ExperimentalAckHeader = "x-acknowledge-experimental"
	ExperimentalAckValue  = "true"
)

// customSchemaKey is what a schema and a package name must match, both in a
// request and in a document to be found: operator-registry's meta key rule.
var customSchemaKey = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// ExperimentalServer implements operator-registry's api.ExperimentalRegistry:
// the catalog documents of schemas the Registry service does not model.
type ExperimentalServer struct {
	api.UnimplementedExperimentalRegistryServer
	holder *Holder

	// The index of one catalog, built on first use (documents decoded once,
	// not per request).
	mu       sync.Mutex
	indexFor *catalog.Catalog
	index    map[customKey][]*structpb.Struct
}

type customKey struct{ schema, pkg string }

// NewExperimentalServer serves the holder's catalog over api.ExperimentalRegistry.
func NewExperimentalServer(h *Holder) *ExperimentalServer {
	return &ExperimentalServer{holder: h}
}

// ExperimentalListPackageCustomSchemas streams, one google.protobuf.Struct
// each, the documents of the requested custom schema whose top-level package
// is packageName (an empty packageName matches only documents without one),
// in catalog order. Without the acknowledgement header the stream is empty;
// an empty or malformed schema, or a malformed packageName, is
// InvalidArgument; no match is an empty stream, never NotFound.
func (s *ExperimentalServer) ExperimentalListPackageCustomSchemas(req *api.ExperimentalListPackageCustomSchemasRequest, stream grpc.ServerStreamingServer[structpb.Struct]) error {
	if !experimentalAcknowledged(stream) {
		return nil
	}
	if req.GetSchema() == "" {
		return status.Error(codes.InvalidArgument, "schema is required")
	}
	if !customSchemaKey.MatchString(req.GetSchema()) {
		return status.Errorf(codes.InvalidArgument, "schema %q does not match %s", req.GetSchema(), customSchemaKey)
	}
	if req.GetPackageName() != "" && !customSchemaKey.MatchString(req.GetPackageName()) {
		return status.Errorf(codes.InvalidArgument, "packageName %q does not match %s", req.GetPackageName(), customSchemaKey)
	}
	index, err := s.indexOf(s.holder.Catalog())
	if err != nil {
		return status.Errorf(codes.Internal, "%v", err)
	}
	for _, d := range index[customKey{req.GetSchema(), req.GetPackageName()}] {
		if err := stream.Send(d); err != nil {
			return err
		}
	}
	return nil
}

func experimentalAcknowledged(stream grpc.ServerStream) bool {
	md, ok := metadata.FromIncomingContext(stream.Context())
	if !ok {
		return false
	}
	v := md.Get(ExperimentalAckHeader)
	return len(v) > 0 && v[0] == ExperimentalAckValue
}

// indexOf returns the custom documents of c by schema and package, built
// once per loaded catalog. Every document is in operator-registry's wire
// form: keys sorted, numbers as doubles.
func (s *ExperimentalServer) indexOf(c *catalog.Catalog) (map[customKey][]*structpb.Struct, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexFor == c {
		return s.index, nil
	}
	index := map[customKey][]*structpb.Struct{}
	for _, m := range c.Others {
		if !catalog.IsCustomSchema(m.Schema) {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(m.Blob, &doc); err != nil {
			return nil, fmt.Errorf("%s: document of schema %q: %w", m.Source, m.Schema, err)
		}
		st, err := structpb.NewStruct(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document of schema %q: %w", m.Source, m.Schema, err)
		}
		k := customKey{m.Schema, m.Package}
		index[k] = append(index[k], st)
	}
	s.indexFor, s.index = c, index
	return index, nil
}
