package catalogd

import (
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ferrydev/ferry/internal/publish"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// messages feeds receiveFrom from a list; io.EOF after the last.
func messages(msgs ...*catalogv1.PublishRequest) func() (*catalogv1.PublishRequest, error) {
	return func() (*catalogv1.PublishRequest, error) {
		if len(msgs) == 0 {
			return nil, io.EOF
		}
		m := msgs[0]
		msgs = msgs[1:]
		return m, nil
	}
}

func hdr(size int64, sum, pkg string) *catalogv1.PublishRequest {
	return &catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Header{Header: &catalogv1.PublishHeader{Size: size, Sha256: sum, Package: pkg}}}
}

func chunk(b []byte) *catalogv1.PublishRequest {
	return &catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Chunk{Chunk: b}}
}

func TestReceiveFraming(t *testing.T) {
	data := []byte("abcdefgh")
	sum := publish.SHA256(data)
	scoped := &publish.Grant{ID: "tokens:1", Packages: []string{"lighthouse-operator"}}
	tests := []struct {
		name string
		msgs []*catalogv1.PublishRequest
		code codes.Code
		want string
	}{
		{"empty", nil, codes.InvalidArgument, "empty stream"},
		{"chunk first", []*catalogv1.PublishRequest{chunk(data)}, codes.InvalidArgument, "the first message must be a header"},
		{"size zero", []*catalogv1.PublishRequest{hdr(0, sum, "")}, codes.InvalidArgument, "size must be positive"},
		{"size too large", []*catalogv1.PublishRequest{hdr(publish.MaxArchiveBytes+1, sum, "")}, codes.ResourceExhausted, "at most 67108864 (64 MiB)"},
		{"bad sum", []*catalogv1.PublishRequest{hdr(8, "abc", "")}, codes.InvalidArgument, "sha256 must be 64 hex digits"},
		{"other package", []*catalogv1.PublishRequest{hdr(8, sum, "signal-store"), chunk(data)}, codes.PermissionDenied, `may not publish package "signal-store"`},
		{"second header", []*catalogv1.PublishRequest{hdr(8, sum, ""), hdr(8, sum, "")}, codes.InvalidArgument, "a second header"},
		{"chunk too large", []*catalogv1.PublishRequest{hdr(publish.MaxArchiveBytes, sum, ""), chunk(make([]byte, publish.ChunkSize+1))}, codes.InvalidArgument, "a chunk of 1048577 bytes"},
		{"more than announced", []*catalogv1.PublishRequest{hdr(4, sum, ""), chunk(data)}, codes.InvalidArgument, "more data than the 4 bytes"},
		{"less than announced", []*catalogv1.PublishRequest{hdr(9, sum, ""), chunk(data)}, codes.InvalidArgument, "received 8 bytes; the header announced 9"},
		{"wrong sum", []*catalogv1.PublishRequest{hdr(8, strings.Repeat("0", 64), ""), chunk(data)}, codes.InvalidArgument, "archive sha256 is " + sum},
		{"whole", []*catalogv1.PublishRequest{hdr(8, sum, "lighthouse-operator"), chunk(data[:3]), chunk(nil), chunk(data[3:])}, codes.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, archive, err := receiveFrom(messages(tc.msgs...), scoped)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Fatalf("got %v, want %s %q", err, tc.code, tc.want)
			}
			if err == nil && string(archive) != string(data) {
				t.Fatalf("archive %q", archive)
			}
		})
	}
}

// TestReceiveBuffersOnlyWhatArrived: a header announcing 64 MiB costs
// nothing until data comes; then the buffer grows with what arrives.
func TestReceiveBuffersOnlyWhatArrived(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := receiveFrom(messages(hdr(publish.MaxArchiveBytes, strings.Repeat("0", 64), ""), chunk(make([]byte, 1000))), &publish.Grant{})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "received 1000 bytes; the header announced 67108864") {
		t.Fatalf("got %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<10 {
		t.Errorf("allocated %d bytes for a 64 MiB header and 1000 bytes of data", d)
	}
}

// FuzzPublishFraming feeds receiveFrom any sequence of messages: each is a
// length-prefixed PublishRequest in the input. It must never panic, and an
// archive it accepts matches the header and is not over-allocated.
func FuzzPublishFraming(f *testing.F) {
	enc := func(msgs ...*catalogv1.PublishRequest) []byte {
		var out []byte
		for _, m := range msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			out = binary.AppendUvarint(out, uint64(len(b)))
			out = append(out, b...)
		}
		return out
	}
	data := []byte("abcdefgh")
	f.Add(enc(hdr(8, publish.SHA256(data), "p"), chunk(data[:5]), chunk(data[5:])))
	f.Add(enc(hdr(8, publish.SHA256(data), ""), chunk(data), chunk(data)))
	f.Add(enc(hdr(publish.MaxArchiveBytes, publish.SHA256(data), ""), chunk(data)))
	f.Add(enc(chunk(data), hdr(8, publish.SHA256(data), "")))
	f.Fuzz(func(t *testing.T, in []byte) {
		next := func() (*catalogv1.PublishRequest, error) {
			n, k := binary.Uvarint(in)
			if k <= 0 || n > uint64(len(in)-k) {
				return nil, io.EOF
			}
			m := &catalogv1.PublishRequest{}
			body := in[k : k+int(n)]
			in = in[k+int(n):]
			if err := proto.Unmarshal(body, m); err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			return m, nil
		}
		h, archive, err := receiveFrom(next, &publish.Grant{Packages: []string{"p"}})
		if err != nil {
			if _, ok := status.FromError(err); !ok || errors.Is(err, io.EOF) {
				t.Fatalf("not a status: %v", err)
			}
			return
		}
		if int64(len(archive)) != h.GetSize() || int64(cap(archive)) > h.GetSize() || publish.SHA256(archive) != strings.ToLower(h.GetSha256()) {
			t.Fatalf("accepted %d bytes (cap %d) for header %v", len(archive), cap(archive), h)
		}
		if h.GetPackage() != "" && h.GetPackage() != "p" {
			t.Fatalf("accepted package %q", h.GetPackage())
		}
	})
}
