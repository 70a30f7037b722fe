package catalogd

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/lru"
	"github.com/ferrydev/ferry/proto/api"
)

// DefaultAnswerCacheBytes is the default byte budget of the single-bundle
// answers catalogd keeps encoded (--answer-cache-bytes): enough for every
// channel head of the community catalog with its content (595 heads,
// about 130 MB encoded), which is what clients ask for again and again.
// catalogd serve keeps these bytes in a file (--answer-cache-dir), not in
// its heap.
const DefaultAnswerCacheBytes int64 = 192 << 20

// DefaultAnswerMemoryBytes is the default budget of answers kept in memory
// when catalogd serve cannot create its answer file (a read-only file
// system): the default memory limit and the container's 256 MiB hold the
// catalog model, this and the decoded manifests together.
const DefaultAnswerMemoryBytes int64 = 32 << 20

// answerKeyOverhead is what one cached answer costs besides its bytes: the
// key's strings, the list element and the map entry, roughly.
const answerKeyOverhead = 256

// encodedMessage is an answer already in protobuf wire form. The
// single-bundle handlers of api.Registry return it in place of the
// api.Bundle it encodes, and passthroughCodec sends its bytes as they are.
// The bytes are shared and never modified.
type encodedMessage struct {
	b []byte
	// owner, when set, holds b for this answer: b lies in the answer
	// file's mapping, and owner.Put says the answer is done with it. The
	// transport calls it once the bytes are sent.
	owner *answerHold
}

// bytes is the answer in one slice of the heap, for callers in this
// process; an answer in the answer file is copied and let go.
func (m *encodedMessage) bytes() []byte {
	if m.owner != nil {
		b := bytes.Clone(m.b)
		m.free()
		m.b = b
	}
	return m.b
}

// free lets go of an answer that will not be sent.
func (m *encodedMessage) free() {
	if m.owner != nil {
		m.owner.Put(&m.b)
		m.owner = nil
	}
}

// passthroughCodec is catalogd's server codec: an encodedMessage goes out
// as it is; every other message is left to the standard proto codec.
type passthroughCodec struct{ proto encoding.CodecV2 }

func newPassthroughCodec() passthroughCodec {
	return passthroughCodec{proto: encoding.GetCodecV2(protoenc.Name)}
}

// Marshal implements encoding.CodecV2.
func (c passthroughCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMessage); ok {
		if m.owner != nil {
			// The transport frees the buffer once it has sent it.
			m.owner.sent.Store(true)
			b := mem.NewBuffer(&m.b, m.owner)
			m.owner = nil
			return mem.BufferSlice{b}, nil
		}
		// SliceBuffer's Free does nothing: the cached bytes stay intact.
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal implements encoding.CodecV2.
func (c passthroughCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// Name implements encoding.CodecV2: the content subtype stays "proto".
func (passthroughCodec) Name() string { return protoenc.Name }

// answerKey names one single-bundle answer: a bundle of a channel of the
// catalog with that digest. Keys hold no pointer into a catalog, so a
// catalog replaced by a reload is not kept alive by its answers.
type answerKey struct{ digest, pkg, channel, bundle string }

// answerCache keeps single-bundle answers, encoded, within a byte budget:
// in an answer file when it has one, else in memory.
type answerCache struct {
	budget int64
	// file holds the answers' bytes; nil keeps them in memory.
	file *answerFile
	// fileErr is why there is no file although one was asked for.
	fileErr error
	mu      sync.Mutex
	// digest is the catalog warmed last; answers of other catalogs are
	// dropped when it changes.
	digest string
	lru    *lru.Cache[answerKey, answerLoc]
}

// newAnswerCache keeps answers within budget bytes; with inFile, in an
// answer file created in dir (os.TempDir() when empty), or, when the file
// cannot be created (fileErr says why), in memory within memoryBudget.
func newAnswerCache(budget int64, inFile bool, dir string, memoryBudget int64) *answerCache {
	budget = max(budget, 0)
	var file *answerFile
	var err error
	if inFile && budget > 0 {
		if file, err = openAnswerFile(dir, budget); err != nil {
			budget = min(budget, max(memoryBudget, 0))
		}
	}
	return &answerCache{budget: budget, file: file, fileErr: err, lru: lru.New[answerKey, answerLoc](budget)}
}

// dropPages unmaps the answer file's pages from catalogd's memory, if it
// has a file: they stay in the page cache.
func (a *answerCache) dropPages() {
	if a.file != nil {
		a.file.dropPages()
	}
}

// close releases the answer file, if any.
func (a *answerCache) close() error {
	if a.file == nil {
		return nil
	}
	return a.file.close()
}

func (a *answerCache) cache() *lru.Cache[answerKey, answerLoc] {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lru
}

// Bytes is the size of the answers kept, overhead included.
func (a *answerCache) Bytes() int64 { return a.cache().Used() }

// Len is the number of answers kept.
func (a *answerCache) Len() int { return a.cache().Len() }

// warmShare is the share of the budget warming fills: room is left for the
// answers clients ask for besides the channel heads, so that warming does
// not evict what it warmed (the community catalog's heads, 124 MiB, fit in
// three quarters of the default 192 MiB).
const warmShare = 0.75

// warm drops the answers of other catalogs than c and builds the answers
// for c's channel heads, which clients ask for most, while they fit in
// warmShare of the budget. Heads whose objects are not at hand (a bundle
// image pulled on first use) are left for a client to ask: warming pulls
// no image. It stops early when ctx ends or done is closed (c was
// replaced); complete says it did not.
func (a *answerCache) warm(ctx context.Context, c *catalog.Catalog, done <-chan struct{}) (warmed int, complete bool) {
	a.mu.Lock()
	if a.digest != c.Digest {
		a.digest, a.lru = c.Digest, lru.New[answerKey, answerLoc](a.budget)
		if a.file != nil {
			a.file.reset()
		}
	}
	a.mu.Unlock()
	for _, p := range c.Packages {
		for _, ch := range p.Channels {
			select {
			case <-ctx.Done():
				return warmed, false
			case <-done:
				return warmed, false
			default:
			}
			if float64(a.Bytes()) >= warmShare*float64(a.budget) {
				return warmed, true
			}
			e := ch.HeadEntry()
			if e == nil || (e.Bundle.HasManifests() && e.Bundle.ManifestsDigest() == "") {
				continue
			}
			if m, err := a.bundle(c, ch, e); err == nil {
				// Not sent: let go of the answer file.
				m.free()
				warmed++
			}
		}
	}
	return warmed, true
}

// bundle returns the single-bundle answer for entry e of channel ch in c,
// encoded: content included, replaces and skips left empty. Answers are
// built once per catalog digest and bundle; an answer whose objects could
// not be had (a bundle image that failed to pull) is an error and is not
// kept.
func (a *answerCache) bundle(c *catalog.Catalog, ch *catalog.Channel, e *catalog.ChannelEntry) (*encodedMessage, error) {
	k := answerKey{digest: c.Digest, pkg: ch.Package, channel: ch.Name, bundle: e.Name}
	cache := a.cache()
	if l, ok := cache.Get(k); ok {
		if a.file == nil {
			return &encodedMessage{b: l.b}, nil
		}
		if m, ok := a.file.get(l); ok {
			return m, nil
		}
	}
	msg, err := apiBundle(ch, e, true)
	if err != nil {
		return nil, err
	}
	msg.Replaces, msg.Skips = "", nil
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encoding bundle %q: %w", e.Name, err)
	}
	size := int64(len(b)) + int64(len(k.digest)+len(k.pkg)+len(k.channel)+len(k.bundle)) + answerKeyOverhead
	// The cache keeps no answer over a quarter of the budget.
	if c.Digest != "" && size <= a.budget/4 {
		l := answerLoc{b: b}
		ok := true
		if a.file != nil {
			l, ok = a.file.put(b)
		}
		if ok {
			cache.Put(k, l, size)
		}
	}
	return &encodedMessage{b: b}, nil
}

// decodeBundle turns an encoded answer back into a message, for callers
// in the same process.
func decodeBundle(m *encodedMessage) (*api.Bundle, error) {
	out := new(api.Bundle)
	if err := proto.Unmarshal(m.bytes(), out); err != nil {
		return nil, fmt.Errorf("decoding a cached bundle answer: %w", err)
	}
	return out, nil
}

// registryServiceDesc is api.Registry with the single-bundle methods
// answering encoded messages, which passthroughCodec sends without
// encoding them again. The other methods are the generated ones.
func registryServiceDesc() *grpc.ServiceDesc {
	desc := api.Registry_ServiceDesc
	desc.Methods = append([]grpc.MethodDesc(nil), desc.Methods...)
	// A method missing here keeps its generated handler, which answers the
	// same message encoded by the standard codec.
	for i, m := range desc.Methods {
		if h, ok := encodedRegistryHandlers[m.MethodName]; ok {
			desc.Methods[i].Handler = h
		}
	}
	return &desc
}

// encodedRegistryHandlers are the handlers of the api.Registry methods
// answered encoded, by method name.
var encodedRegistryHandlers = map[string]grpc.MethodHandler{
	"GetBundle":                    encodedUnary(api.Registry_GetBundle_FullMethodName, (*RegistryServer).encodedGetBundle),
	"GetBundleForChannel":          encodedUnary(api.Registry_GetBundleForChannel_FullMethodName, (*RegistryServer).encodedGetBundleForChannel),
	"GetBundleThatReplaces":        encodedUnary(api.Registry_GetBundleThatReplaces_FullMethodName, (*RegistryServer).encodedGetBundleThatReplaces),
	"GetDefaultBundleThatProvides": encodedUnary(api.Registry_GetDefaultBundleThatProvides_FullMethodName, (*RegistryServer).encodedGetDefaultBundleThatProvides),
}

// encodedUnary is a unary handler like the generated one whose answer is an
// encodedMessage.
func encodedUnary[Req any, PReq interface {
	*Req
	proto.Message
}](fullMethod string, answer func(*RegistryServer, PReq) (*encodedMessage, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := PReq(new(Req))
		if err := dec(in); err != nil {
			return nil, err
		}
		s := srv.(*RegistryServer)
		call := func(_ context.Context, req any) (any, error) {
			m, err := answer(s, req.(PReq))
			if err != nil {
				return nil, err
			}
			return m, nil
		}
		if interceptor == nil {
			return call(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, call)
	}
}
