package catalogd

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/proto/api"
)

// RegistryServer implements the operator-registry api.Registry service.
// Over gRPC it is served by NewServer, whose codec sends the answers it
// keeps encoded as they are; its methods can also be called in process.
type RegistryServer struct {
	api.UnimplementedRegistryServer
	holder *Holder
	// answers keeps single-bundle answers (content included), encoded:
	// clients ask for the same channel heads again and again.
	answers *answerCache
	// list is the ListBundles answer of one catalog, built on first use and
	// kept encoded: far smaller than the messages, and sent as it is; in
	// the answer file when there is one.
	listMu  sync.Mutex
	listFor *catalog.Catalog
	list    keptList
	// maxList is the largest ListBundles answer kept (maxKeptList).
	maxList int64
	// warmed is the digest of the catalog whose channel heads WarmAnswers
	// kept last.
	warmed atomic.Pointer[string]
}

// RegistryOption configures NewRegistryServer.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	answerBudget       int64
	answerFile         bool
	answerDir          string
	answerMemoryBudget int64
}

// WithAnswerBudget bounds the bytes of single-bundle answers kept encoded
// (default DefaultAnswerCacheBytes; 0 keeps none).
func WithAnswerBudget(bytes int64) RegistryOption {
	return func(o *registryOptions) { o.answerBudget = bytes }
}

// WithAnswerFile keeps the bytes of the answers in a file without a name
// created in dir (os.TempDir() when empty) instead of in memory: they then
// live in the page cache, outside the process's heap and resident memory.
// When the file cannot be created at most memoryBudget bytes of answers are
// kept in memory and AnswerStore says why. Close releases the file.
func WithAnswerFile(dir string, memoryBudget int64) RegistryOption {
	return func(o *registryOptions) {
		o.answerFile, o.answerDir, o.answerMemoryBudget = true, dir, memoryBudget
	}
}

// NewRegistryServer serves the holder's catalog over api.Registry.
func NewRegistryServer(h *Holder, opts ...RegistryOption) *RegistryServer {
	o := registryOptions{answerBudget: DefaultAnswerCacheBytes}
	for _, opt := range opts {
		opt(&o)
	}
	return &RegistryServer{holder: h, maxList: maxKeptList, answers: newAnswerCache(o.answerBudget, o.answerFile, o.answerDir, o.answerMemoryBudget)}
}

// AnswerStore reports whether the answers' bytes are kept in a file, their
// budget, and when a file was asked for but could not be created, why.
func (s *RegistryServer) AnswerStore() (inFile bool, budget int64, err error) {
	return s.answers.file != nil, s.answers.budget, s.answers.fileErr
}

// Close releases the answer file, if any; answers are then built anew.
func (s *RegistryServer) Close() error { return s.answers.close() }

// WarmAnswers keeps the answers for the channel heads of the catalog
// served ready, again after every reload that changes its digest, until
// ctx ends.
func (s *RegistryServer) WarmAnswers(ctx context.Context) {
	for {
		c, changed := s.holder.Current()
		if c != nil {
			if _, complete := s.answers.warm(ctx, c, changed); complete {
				s.warmed.Store(&c.Digest)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// AnswersWarm reports whether WarmAnswers has kept the answers of the
// channel heads of the catalog being served.
func (s *RegistryServer) AnswersWarm() bool {
	c := s.holder.Catalog()
	d := s.warmed.Load()
	return c != nil && d != nil && *d == c.Digest
}

// AnswerCache reports the bytes and number of single-bundle answers kept.
func (s *RegistryServer) AnswerCache() (bytes int64, answers int) {
	return s.answers.Bytes(), s.answers.Len()
}

// decoded is a single-bundle answer as a message, for callers in the same
// process; over gRPC the encoded answer is sent as it is.
func decoded(m *encodedMessage, err error) (*api.Bundle, error) {
	if err != nil {
		return nil, err
	}
	return decodeBundle(m)
}

// ListPackages streams every package name, sorted.
func (s *RegistryServer) ListPackages(_ *api.ListPackageRequest, stream grpc.ServerStreamingServer[api.PackageName]) error {
	for _, p := range s.holder.Catalog().Packages {
		if err := stream.Send(&api.PackageName{Name: p.Name}); err != nil {
			return err
		}
	}
	return nil
}

// GetPackage returns a package with its channels sorted by name; a channel's
// csvName is its head.
func (s *RegistryServer) GetPackage(_ context.Context, req *api.GetPackageRequest) (*api.Package, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	p := s.holder.Catalog().Package(req.GetName())
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "package %q not found", req.GetName())
	}
	out := &api.Package{Name: p.Name, DefaultChannelName: p.DefaultChannel, Deprecation: apiDeprecation(p.Deprecation)}
	for _, ch := range p.Channels {
		out.Channels = append(out.Channels, &api.Channel{Name: ch.Name, CsvName: ch.Head, Deprecation: apiDeprecation(ch.Deprecation)})
	}
	return out, nil
}

// GetBundle returns one bundle of a channel, with its content and with
// replaces and skips left empty.
func (s *RegistryServer) GetBundle(_ context.Context, req *api.GetBundleRequest) (*api.Bundle, error) {
	return decoded(s.encodedGetBundle(req))
}

func (s *RegistryServer) encodedGetBundle(req *api.GetBundleRequest) (*encodedMessage, error) {
	if req.GetPkgName() == "" || req.GetChannelName() == "" || req.GetCsvName() == "" {
		return nil, status.Error(codes.InvalidArgument, "pkgName, channelName and csvName are required")
	}
	c := s.holder.Catalog()
	ch, err := lookupChannel(c, req.GetPkgName(), req.GetChannelName())
	if err != nil {
		return nil, err
	}
	e := ch.Entry(req.GetCsvName())
	if e == nil {
		return nil, status.Errorf(codes.NotFound, "bundle %q not found in channel %q of package %q", req.GetCsvName(), ch.Name, ch.Package)
	}
	return s.answers.bundle(c, ch, e)
}

// GetBundleForChannel returns the head of a channel.
func (s *RegistryServer) GetBundleForChannel(_ context.Context, req *api.GetBundleInChannelRequest) (*api.Bundle, error) {
	return decoded(s.encodedGetBundleForChannel(req))
}

func (s *RegistryServer) encodedGetBundleForChannel(req *api.GetBundleInChannelRequest) (*encodedMessage, error) {
	if req.GetPkgName() == "" || req.GetChannelName() == "" {
		return nil, status.Error(codes.InvalidArgument, "pkgName and channelName are required")
	}
	c := s.holder.Catalog()
	ch, err := lookupChannel(c, req.GetPkgName(), req.GetChannelName())
	if err != nil {
		return nil, err
	}
	return s.answers.bundle(c, ch, ch.HeadEntry())
}

// GetChannelEntriesThatReplace streams the entries, in any channel, that
// replace or skip the named bundle.
func (s *RegistryServer) GetChannelEntriesThatReplace(req *api.GetAllReplacementsRequest, stream grpc.ServerStreamingServer[api.ChannelEntry]) error {
	if req.GetCsvName() == "" {
		return status.Error(codes.InvalidArgument, "csvName is required")
	}
	var out []*api.ChannelEntry
	for _, p := range s.holder.Catalog().Packages {
		for _, ch := range p.Channels {
			for _, e := range ch.Entries {
				if e.Replaces == req.GetCsvName() {
					out = append(out, channelEntry(ch, e.Name, e.Replaces))
				}
				for _, sk := range e.Skips {
					if sk == req.GetCsvName() && sk != e.Replaces {
						out = append(out, channelEntry(ch, e.Name, e.Replaces))
					}
				}
			}
		}
	}
	if len(out) == 0 {
		return status.Errorf(codes.NotFound, "no channel entries replace %q", req.GetCsvName())
	}
	return sendAll(stream, out)
}

// GetBundleThatReplaces returns the bundle of a channel that replaces or
// skips the named one.
func (s *RegistryServer) GetBundleThatReplaces(_ context.Context, req *api.GetReplacementRequest) (*api.Bundle, error) {
	return decoded(s.encodedGetBundleThatReplaces(req))
}

func (s *RegistryServer) encodedGetBundleThatReplaces(req *api.GetReplacementRequest) (*encodedMessage, error) {
	if req.GetCsvName() == "" || req.GetPkgName() == "" || req.GetChannelName() == "" {
		return nil, status.Error(codes.InvalidArgument, "csvName, pkgName and channelName are required")
	}
	c := s.holder.Catalog()
	ch, err := lookupChannel(c, req.GetPkgName(), req.GetChannelName())
	if err != nil {
		return nil, err
	}
	for i := len(ch.Entries) - 1; i >= 0; i-- {
		e := ch.Entries[i]
		if _, ok := e.UpgradesFrom(req.GetCsvName(), nil); ok {
			return s.answers.bundle(c, ch, e)
		}
	}
	return nil, status.Errorf(codes.NotFound, "no bundle in channel %q of package %q replaces %q", ch.Name, ch.Package, req.GetCsvName())
}

// GetChannelEntriesThatProvide streams, for every channel entry whose bundle
// provides the API, the entry and one more per skipped bundle.
func (s *RegistryServer) GetChannelEntriesThatProvide(req *api.GetAllProvidersRequest, stream grpc.ServerStreamingServer[api.ChannelEntry]) error {
	g, err := gvkOf(req.GetGroup(), req.GetVersion(), req.GetKind())
	if err != nil {
		return err
	}
	c := s.holder.Catalog()
	var out []*api.ChannelEntry
	for _, b := range c.Providers(g) {
		p := c.Package(b.Package)
		for _, chName := range b.Channels {
			ch := p.Channel(chName)
			out = append(out, entriesForBundle(ch, ch.Entry(b.Name), false)...)
		}
	}
	if len(out) == 0 {
		return status.Errorf(codes.NotFound, "no bundle provides %s", g)
	}
	return sendAll(stream, out)
}

// GetLatestChannelEntriesThatProvide streams the entries of every channel
// head that provides the API (one more per skipped bundle of the channel).
func (s *RegistryServer) GetLatestChannelEntriesThatProvide(req *api.GetLatestProvidersRequest, stream grpc.ServerStreamingServer[api.ChannelEntry]) error {
	g, err := gvkOf(req.GetGroup(), req.GetVersion(), req.GetKind())
	if err != nil {
		return err
	}
	var out []*api.ChannelEntry
	for _, p := range s.holder.Catalog().Packages {
		for _, ch := range p.Channels {
			if head := ch.HeadEntry(); provides(head.Bundle, g) {
				out = append(out, entriesForBundle(ch, head, true)...)
			}
		}
	}
	if len(out) == 0 {
		return status.Errorf(codes.NotFound, "no channel head provides %s", g)
	}
	return sendAll(stream, out)
}

// GetDefaultBundleThatProvides returns the head of a package's default
// channel when it provides the API; with several packages, the first by name.
func (s *RegistryServer) GetDefaultBundleThatProvides(_ context.Context, req *api.GetDefaultProviderRequest) (*api.Bundle, error) {
	return decoded(s.encodedGetDefaultBundleThatProvides(req))
}

func (s *RegistryServer) encodedGetDefaultBundleThatProvides(req *api.GetDefaultProviderRequest) (*encodedMessage, error) {
	g, err := gvkOf(req.GetGroup(), req.GetVersion(), req.GetKind())
	if err != nil {
		return nil, err
	}
	c := s.holder.Catalog()
	for _, p := range c.Packages {
		ch := p.Channel(p.DefaultChannel)
		if head := ch.HeadEntry(); provides(head.Bundle, g) {
			return s.answers.bundle(c, ch, head)
		}
	}
	return nil, status.Errorf(codes.NotFound, "no default channel head provides %s", g)
}

// ListBundles streams one bundle per package, channel and entry. Bundles with
// an image leave csvJson and object empty; others carry their content.
func (s *RegistryServer) ListBundles(_ *api.ListBundlesRequest, stream grpc.ServerStreamingServer[api.Bundle]) error {
	// SendMsg: the stream's codec sends an encoded answer as it is.
	return s.listBundles(s.holder.Catalog(), func(m *encodedMessage) error { return stream.SendMsg(m) })
}

// maxKeptList bounds the ListBundles answer kept encoded. The community
// catalog's is about 10 MiB (its bundles name images, so entries carry no
// content); a bundle tree's entries carry every object, and its answer is
// the size of the tree: above the bound it is built anew for each call,
// one entry at a time, and memory stays bounded.
const maxKeptList = 64 << 20

// keptList is a kept ListBundles answer: its entries in memory, or in
// the answer file one after the other from loc, with each entry's length
// in memory (4 bytes an entry).
type keptList struct {
	entries []*encodedMessage
	inFile  bool
	loc     answerLoc
	lens    []uint32
}

// len is the number of entries kept.
func (l keptList) len() int {
	if l.inFile {
		return len(l.lens)
	}
	return len(l.entries)
}

// listBundles sends the ListBundles answer for c entry by entry. The answer
// is built once per loaded catalog and kept, while it fits in s.maxList:
// OLM asks for it on every resolution. With an answer file, the kept
// entries are in the file and each is read back as it is sent; when the
// file started over since, the entries not sent yet are built again.
func (s *RegistryServer) listBundles(c *catalog.Catalog, send func(*encodedMessage) error) error {
	s.listMu.Lock()
	if s.listFor == c {
		list := s.list
		s.listMu.Unlock()
		if !list.inFile {
			for _, m := range list.entries {
				if err := send(m); err != nil {
					return err
				}
			}
			return nil
		}
		sent, err := s.sendKeptList(list, send)
		if err != nil || sent == len(list.lens) {
			return err
		}
		// The file started over: build the rest, and keep the answer again.
		s.listMu.Lock()
		if s.listFor == c {
			s.listFor, s.list = nil, keptList{}
		}
		s.listMu.Unlock()
		return s.buildList(c, sent, send)
	}
	s.listMu.Unlock()
	return s.buildList(c, 0, send)
}

// listCopyRun bounds the bytes of the run of small consecutive entries a
// kept list in the answer file copies out at once; an entry of
// listOwnEntry bytes or more is sent from the file's mapping instead.
const (
	listCopyRun  = 64 << 10
	listOwnEntry = 16 << 10
)

// sendKeptList sends the entries of a list kept in the answer file and
// returns how many it sent: all of them, or those before the first that
// no longer reads back (the file started over). Most entries are a few
// hundred bytes, which the transport does not say it is done with: runs of
// them are copied out of the file into one buffer each, instead of holding
// the file and copying for every entry; a large entry is sent from the
// mapping, held until it is sent.
func (s *RegistryServer) sendKeptList(list keptList, send func(*encodedMessage) error) (int, error) {
	f := s.answers.file
	off := list.loc.off
	for i := 0; i < len(list.lens); {
		if n := int(list.lens[i]); n >= listOwnEntry {
			m, ok := f.message(list.loc.gen, off, n)
			if !ok {
				return i, nil
			}
			if err := send(m); err != nil {
				return i, err
			}
			off += int64(n)
			i++
			continue
		}
		j, size := i, 0
		for j < len(list.lens) && int(list.lens[j]) < listOwnEntry && size+int(list.lens[j]) <= listCopyRun {
			size += int(list.lens[j])
			j++
		}
		run, ok := f.read(list.loc.gen, off, size)
		if !ok {
			return i, nil
		}
		for ; i < j; i++ {
			n := int(list.lens[i])
			if err := send(&encodedMessage{b: run[:n:n]}); err != nil {
				return i, err
			}
			run = run[n:]
		}
		off += int64(size)
	}
	return len(list.lens), nil
}

// buildList builds the ListBundles entries of c, sends those after the
// first skip and, when the whole answer fits in s.maxList, keeps it.
func (s *RegistryServer) buildList(c *catalog.Catalog, skip int, send func(*encodedMessage) error) error {
	var (
		kept    []*encodedMessage
		size    int64
		keeping = true
		i       int
	)
	for _, p := range c.Packages {
		for _, ch := range p.Channels {
			for _, e := range ch.Entries {
				b, err := apiBundle(ch, e, e.Bundle.Image == "")
				if err != nil {
					return err
				}
				enc, err := proto.Marshal(b)
				if err != nil {
					return fmt.Errorf("encoding bundle %q: %w", e.Name, err)
				}
				m := &encodedMessage{b: enc}
				if keeping {
					if size += int64(len(enc)); size > s.maxList {
						keeping, kept = false, nil
					} else {
						kept = append(kept, m)
					}
				}
				if i >= skip {
					if err := send(m); err != nil {
						return err
					}
				}
				i++
			}
		}
	}
	if keeping {
		list := s.keepList(kept, size)
		s.listMu.Lock()
		s.listFor, s.list = c, list
		s.listMu.Unlock()
	}
	return nil
}

// keepList keeps the entries in the answer file when there is one and they
// fit, else in memory.
func (s *RegistryServer) keepList(entries []*encodedMessage, size int64) keptList {
	f := s.answers.file
	if f == nil || size == 0 {
		return keptList{entries: entries}
	}
	all := make([]byte, 0, size)
	lens := make([]uint32, len(entries))
	for i, m := range entries {
		all = append(all, m.b...)
		lens[i] = uint32(len(m.b))
	}
	loc, ok := f.put(all)
	if !ok {
		return keptList{entries: entries}
	}
	return keptList{inFile: true, loc: loc, lens: lens}
}

func lookupChannel(c *catalog.Catalog, pkg, channel string) (*catalog.Channel, error) {
	p := c.Package(pkg)
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "package %q not found", pkg)
	}
	ch := p.Channel(channel)
	if ch == nil {
		return nil, status.Errorf(codes.NotFound, "channel %q not found in package %q", channel, pkg)
	}
	return ch, nil
}

func gvkOf(group, version, kind string) (catalog.GVK, error) {
	if version == "" || kind == "" {
		return catalog.GVK{}, status.Error(codes.InvalidArgument, "version and kind are required")
	}
	return catalog.GVK{Group: group, Version: version, Kind: kind}, nil
}

func provides(b *catalog.Bundle, g catalog.GVK) bool {
	for _, pg := range b.ProvidedAPIs {
		if pg == g {
			return true
		}
	}
	return false
}

// entriesForBundle is the entry of a bundle in a channel plus one per bundle
// it skips (other than the one it replaces), optionally only those skipped
// bundles that are in the channel, as operator-registry answers.
func entriesForBundle(ch *catalog.Channel, e *catalog.ChannelEntry, onlyInChannel bool) []*api.ChannelEntry {
	out := []*api.ChannelEntry{channelEntry(ch, e.Name, e.Replaces)}
	for _, sk := range e.Skips {
		if sk == e.Replaces || (onlyInChannel && ch.Entry(sk) == nil) {
			continue
		}
		out = append(out, channelEntry(ch, e.Name, sk))
	}
	return out
}

func sendAll[T any](stream grpc.ServerStreamingServer[T], items []*T) error {
	for _, it := range items {
		if err := stream.Send(it); err != nil {
			return err
		}
	}
	return nil
}

func channelEntry(ch *catalog.Channel, name, replaces string) *api.ChannelEntry {
	return &api.ChannelEntry{PackageName: ch.Package, ChannelName: ch.Name, BundleName: name, Replaces: replaces}
}

func apiDeprecation(d *catalog.Deprecation) *api.Deprecation {
	if d == nil {
		return nil
	}
	return &api.Deprecation{Message: d.Message}
}

// apiBundle projects a bundle in a channel onto the registry message.
func apiBundle(ch *catalog.Channel, e *catalog.ChannelEntry, withContent bool) (*api.Bundle, error) {
	b := e.Bundle
	out := &api.Bundle{
		CsvName: b.Name, PackageName: b.Package, ChannelName: ch.Name, BundlePath: b.Image,
		Version: b.Version.String(), SkipRange: e.SkipRange, Replaces: e.Replaces, Skips: e.Skips,
		Deprecation: apiDeprecation(b.Deprecation),
	}
	for _, g := range b.ProvidedAPIs {
		out.ProvidedApis = append(out.ProvidedApis, &api.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind})
	}
	for _, g := range b.RequiredAPIs {
		out.RequiredApis = append(out.RequiredApis, &api.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind})
	}
	// Values are in operator-registry's wire form, computed at load.
	for _, p := range b.RegistryProperties() {
		out.Properties = append(out.Properties, &api.Property{Type: p.Type, Value: string(p.Value)})
	}
	for _, d := range b.RegistryDependencies() {
		out.Dependencies = append(out.Dependencies, &api.Dependency{Type: d.Type, Value: string(d.Value)})
	}
	if withContent {
		ms, err := b.Manifests()
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "bundle %q: %v", b.Name, err)
		}
		for _, m := range ms {
			out.Object = append(out.Object, string(m.JSON))
			if m.Kind == catalog.KindClusterServiceVersion {
				out.CsvJson = string(m.JSON)
			}
		}
	}
	return out, nil
}
