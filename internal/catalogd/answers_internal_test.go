package catalogd

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/proto/api"
)

// TestPassthroughCodec: an encoded answer goes out byte for byte; every
// other message is encoded and decoded as the standard proto codec does.
func TestPassthroughCodec(t *testing.T) {
	codec := newPassthroughCodec()
	std := encoding.GetCodecV2(protoenc.Name)
	if codec.Name() != protoenc.Name {
		t.Errorf("name %q, want %q", codec.Name(), protoenc.Name)
	}
	bundle := &api.Bundle{CsvName: "demo.v1.0.0", PackageName: "demo", ChannelName: "stable", Object: []string{`{"kind":"ClusterServiceVersion"}`}}
	enc, err := proto.Marshal(bundle)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  any
		want []byte
	}{
		{name: "encoded answer passes through", msg: &encodedMessage{b: enc}, want: enc},
		{name: "a message is encoded as by the proto codec", msg: bundle, want: enc},
		{name: "an empty encoded answer stays empty", msg: &encodedMessage{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := codec.Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			if got := out.Materialize(); !bytes.Equal(got, tt.want) {
				t.Errorf("marshalled %x, want %x", got, tt.want)
			}
		})
	}
	// The cached bytes survive the transport freeing what it sent.
	keep := append([]byte(nil), enc...)
	out, err := codec.Marshal(&encodedMessage{b: enc})
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	if !bytes.Equal(enc, keep) {
		t.Errorf("freeing the sent buffers changed the cached answer")
	}
	// Requests are decoded by the standard codec.
	in, err := std.Marshal(&api.GetBundleRequest{PkgName: "demo", ChannelName: "stable", CsvName: "demo.v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	var req api.GetBundleRequest
	if err := codec.Unmarshal(in, &req); err != nil {
		t.Fatal(err)
	}
	if req.GetCsvName() != "demo.v1.0.0" || req.GetPkgName() != "demo" {
		t.Errorf("decoded %v", &req)
	}
	if _, err := codec.Marshal("not a message"); err == nil {
		t.Errorf("marshalling a string: no error")
	}
}

// TestRegistryServiceDesc: every single-bundle method of api.Registry is
// answered encoded, and every other method keeps its generated handler.
func TestRegistryServiceDesc(t *testing.T) {
	desc := registryServiceDesc()
	if desc.ServiceName != api.Registry_ServiceDesc.ServiceName || len(desc.Streams) != len(api.Registry_ServiceDesc.Streams) {
		t.Fatalf("service %q with %d streams, want %q with %d", desc.ServiceName, len(desc.Streams),
			api.Registry_ServiceDesc.ServiceName, len(api.Registry_ServiceDesc.Streams))
	}
	seen := map[string]bool{}
	for i, m := range desc.Methods {
		_, encoded := encodedRegistryHandlers[m.MethodName]
		seen[m.MethodName] = encoded
		generated := api.Registry_ServiceDesc.Methods[i]
		if m.MethodName != generated.MethodName {
			t.Fatalf("method %d is %s, want %s", i, m.MethodName, generated.MethodName)
		}
		if !encoded && m.Handler == nil {
			t.Errorf("%s has no handler", m.MethodName)
		}
	}
	for name := range encodedRegistryHandlers {
		if !seen[name] {
			t.Errorf("api.Registry has no method %s", name)
		}
	}
	// The generated descriptor is left as it is.
	for _, m := range api.Registry_ServiceDesc.Methods {
		if _, ok := encodedRegistryHandlers[m.MethodName]; ok && m.Handler == nil {
			t.Errorf("generated %s lost its handler", m.MethodName)
		}
	}
}

// TestWarmAnswers: the channel heads' answers are kept in the background,
// AnswersWarm says when, and warming again (every answer already kept)
// leaves no hold on the answer file.
func TestWarmAnswers(t *testing.T) {
	dir := t.TempDir()
	c := bigBundleCatalog(t, dir)
	s := NewRegistryServer(NewHolder(c), WithAnswerFile(dir, DefaultAnswerCacheBytes))
	t.Cleanup(func() { _ = s.Close() })
	if s.AnswersWarm() {
		t.Fatal("warm before WarmAnswers ran")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WarmAnswers(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return s.AnswersWarm(), nil
	}); err != nil {
		t.Fatalf("never warm: %v", err)
	}
	if n, want := s.answers.Len(), c.Counts().Channels; n != want {
		t.Errorf("%d answers kept, want one per channel head (%d)", n, want)
	}
	if warmed, complete := s.answers.warm(ctx, c, nil); warmed != c.Counts().Channels || !complete {
		t.Errorf("warming again: %d answers, complete %v", warmed, complete)
	}
	if n := s.answers.file.cur.refs.Load(); n != 1 {
		t.Errorf("%d holds on the answer file after warming from it, want 1 (the file's own)", n)
	}
}
