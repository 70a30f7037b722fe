package catalogd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/grpc/mem"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestAnswerFile: answers read back byte for byte until the file starts
// over, and the file never grows past its bound nor keeps a
// name in its directory.
func TestAnswerFile(t *testing.T) {
	dir := t.TempDir()
	f, err := openAnswerFile(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.close() })
	if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 0 {
		t.Errorf("the answer file has a name: %v", names)
	}
	put := func(t *testing.T, b []byte) answerLoc {
		t.Helper()
		l, ok := f.put(b)
		if !ok {
			t.Fatalf("put of %d bytes refused", len(b))
		}
		return l
	}
	get := func(l answerLoc) []byte {
		m, ok := f.get(l)
		if !ok {
			return nil
		}
		return m.bytes()
	}
	// Over gRPC's pooling threshold, so that they are sent from the file.
	a, b := bytes.Repeat([]byte("a"), 4000), bytes.Repeat([]byte("b"), 4000)
	la, lb := put(t, a), put(t, b)

	tests := []struct {
		name   string
		action func(t *testing.T)
		loc    *answerLoc
		want   []byte
	}{
		{name: "first answer reads back", loc: &la, want: a},
		{name: "an answer read back is sent as it is", action: func(t *testing.T) {
			m, ok := f.get(la)
			if !ok || m.owner == nil {
				t.Fatalf("read back: %v, held by the file: %v", ok, m != nil && m.owner != nil)
			}
			out, err := newPassthroughCodec().Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Materialize(); !bytes.Equal(got, a) {
				t.Errorf("marshalled %q, want %q", got, a)
			}
			out.Free()
		}, loc: &la, want: a},
		{name: "second answer reads back", loc: &lb, want: b},
		{name: "an empty answer is not kept", action: func(t *testing.T) {
			if _, ok := f.put(nil); ok {
				t.Error("empty answer kept")
			}
		}, loc: &la, want: a},
		{name: "an answer over the bound is not kept", action: func(t *testing.T) {
			if _, ok := f.put(make([]byte, 10_001)); ok {
				t.Error("answer over the bound kept")
			}
		}, loc: &lb, want: b},
		{name: "an answer that does not fit starts the file over", action: func(t *testing.T) {
			lb = put(t, b)
			if lb.off != 0 || lb.gen != la.gen+1 {
				t.Errorf("written at %d in generation %d, want 0 in %d", lb.off, lb.gen, la.gen+1)
			}
		}, loc: &lb, want: b},
		{name: "answers of the previous generation are gone", loc: &la, want: nil},
		{name: "reset forgets every answer", action: func(t *testing.T) { f.reset() }, loc: &lb, want: nil},
		{name: "after a reset answers are kept again", action: func(t *testing.T) { la = put(t, a) }, loc: &la, want: a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.action != nil {
				tt.action(t)
			}
			if got := get(*tt.loc); !bytes.Equal(got, tt.want) {
				t.Errorf("read %q, want %q", got, tt.want)
			}
			st, err := f.cur.f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() > f.max {
				t.Errorf("file of %d bytes, bound %d", st.Size(), f.max)
			}
		})
	}
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	if got := get(la); got != nil {
		t.Errorf("read %q from a closed file", got)
	}
}

// TestAnswerFileUnwritableDir: without a writable directory the answers are
// kept in memory, within the memory budget, and the reason is reported.
func TestAnswerFileUnwritableDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	a := newAnswerCache(1<<20, true, missing, 1<<10)
	if a.file != nil || !errors.Is(a.fileErr, fs.ErrNotExist) {
		t.Fatalf("file %v, error %v; want no file and a not-exist error", a.file, a.fileErr)
	}
	if a.budget != 1<<10 {
		t.Errorf("budget %d in memory, want the memory budget %d", a.budget, 1<<10)
	}
	if a := newAnswerCache(0, true, missing, 1<<10); a.file != nil || a.fileErr != nil {
		t.Errorf("a zero budget opened a file (%v) or failed (%v)", a.file, a.fileErr)
	}
}

// TestAnswerFileConcurrent: writers, readers and restarts at once; an
// answer either reads back exactly as written or is gone, never another
// answer's bytes.
func TestAnswerFileConcurrent(t *testing.T) {
	f := newAnswerFile(t, 64<<10)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				want := bytes.Repeat([]byte{byte(w*31 + i)}, 1+(w*997+i*131)%8000)
				l, ok := f.put(want)
				if !ok {
					continue
				}
				m, ok := f.get(l)
				if ok && !bytes.Equal(m.bytes(), want) {
					errs <- fmt.Errorf("writer %d answer %d read back other bytes", w, i)
					return
				}
				if i%50 == 0 {
					f.reset()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestAnswerFileSend: an answer is sent from the file's mapping, held
// until the transport frees it; a small one, which the transport would
// never free, is copied; in process the bytes are copied out.
func TestAnswerFileSend(t *testing.T) {
	f := newAnswerFile(t, 4<<20)
	// gRPC's threshold: buffers of this size or less are not pooled.
	threshold := 1
	for mem.IsBelowBufferPoolingThreshold(threshold + 1) {
		threshold++
	}
	tests := []struct {
		name   string
		size   int
		mapped bool
	}{
		{name: "one byte", size: 1},
		{name: "at gRPC's pooling threshold", size: threshold},
		{name: "one byte over it", size: threshold + 1, mapped: true},
		{name: "several MB", size: 3<<20 + 1000, mapped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, tt.size)
			for i := range want {
				want[i] = byte(i * 7)
			}
			l, g, m := putGet(t, f, want)
			holds := int64(1)
			if tt.mapped {
				holds = 2
			}
			if (m.owner != nil) != tt.mapped || g.refs.Load() != holds {
				t.Errorf("sent from the mapping %v, holds on the file %d; want %v and %d", m.owner != nil, g.refs.Load(), tt.mapped, holds)
			}
			out, err := newPassthroughCodec().Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if m.owner != nil {
				t.Error("the message still holds the bytes it gave the transport")
			}
			if got := out.Materialize(); !bytes.Equal(got, want) {
				t.Errorf("marshalled %d bytes differing from the %d put", len(got), len(want))
			}
			out.Free()
			if n := g.refs.Load(); n != 1 {
				t.Errorf("%d holds on the file after the transport freed the answer, want 1", n)
			}
			// In process, the bytes are copied out and the hold let go.
			m, ok := f.get(l)
			if !ok {
				t.Fatal("not read back the second time")
			}
			if got := m.bytes(); !bytes.Equal(got, want) {
				t.Errorf("copied %d bytes differing from the %d put", len(got), len(want))
			}
			if n := g.refs.Load(); m.owner != nil || n != 1 {
				t.Errorf("after copying out: held %v, %d holds on the file; want none and 1", m.owner != nil, n)
			}
		})
	}
}

// TestAnswerFileOutlivesStartOver: an answer being sent keeps its file
// mapped when the file starts over or is closed, and the file goes with the
// last answer sent from it; while it is held, the new file does not start
// over again (no third file on disk).
func TestAnswerFileOutlivesStartOver(t *testing.T) {
	f, err := openAnswerFile(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("kept"), 10_000)
	l, old, m := putGet(t, f, want)
	out, err := newPassthroughCodec().Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	f.reset()
	if f.cur == old {
		t.Fatal("reset kept the same file")
	}
	if _, ok := f.get(l); ok {
		t.Error("an answer of the previous file read back")
	}
	second := f.cur
	big := make([]byte, 600<<10)
	if _, ok := f.put(big); !ok {
		t.Fatal("put into the new file refused")
	}
	if _, ok := f.put(big); ok || f.cur != second {
		t.Errorf("the new file started over (kept %v) while the previous one is still held", ok)
	}
	if n := old.refs.Load(); n != 1 {
		t.Errorf("%d holds on the previous file while an answer is being sent, want 1", n)
	}
	if got := out.Materialize(); !bytes.Equal(got, want) {
		t.Error("the answer being sent changed when the file started over")
	}
	out.Free()
	if n := old.refs.Load(); n != 0 {
		t.Errorf("%d holds on the previous file once its answer is sent, want 0 (unmapped)", n)
	}
	if _, ok := f.put(big); !ok || f.cur == second {
		t.Errorf("the file did not start over (kept %v) once the previous one was let go", ok)
	}
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	if n := f.cur.refs.Load(); n != 0 {
		t.Errorf("%d holds on the closed file, want 0", n)
	}
}

// TestAnswerFileForgottenAnswer: an answer dropped without being sent or
// freed lets go of its file once the collector finds it; one handed to the
// transport does not, until the transport frees it.
func TestAnswerFileForgottenAnswer(t *testing.T) {
	f := newAnswerFile(t, 1<<20)
	g := f.cur
	// Both answers are unreachable once the functions return; one was
	// handed to the transport.
	out, err := func() (mem.BufferSlice, error) {
		_, _, sent := putGet(t, f, bytes.Repeat([]byte("s"), 8000))
		return newPassthroughCodec().Marshal(sent)
	}()
	if err != nil {
		t.Fatal(err)
	}
	func() { putGet(t, f, bytes.Repeat([]byte("f"), 8000)) }()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		runtime.GC()
		return g.refs.Load() == 2, nil
	}); err != nil {
		t.Fatalf("%d holds on the file with one answer in the transport and one forgotten, want 2 (the file's and the transport's)", g.refs.Load())
	}
	out.Free()
	if n := g.refs.Load(); n != 1 {
		t.Errorf("%d holds once the transport freed its answer, want 1", n)
	}
}

// TestAnswerFileDropPages: once its pages are dropped the file's mapping
// takes no memory of catalogd's, and answers still read back.
func TestAnswerFileDropPages(t *testing.T) {
	f := newAnswerFile(t, 8<<20)
	want := bytes.Repeat([]byte{0xa5}, 4<<20)
	l, _, m := putGet(t, f, want)
	if got := m.bytes(); !bytes.Equal(got, want) { // read through the mapping
		t.Fatal("the answer does not read back")
	}
	if rss := mappingRSS(t, f.cur.data); rss < 4<<20 {
		t.Fatalf("%d bytes of the mapping resident after reading 4 MiB from it", rss)
	}
	f.dropPages()
	if rss := mappingRSS(t, f.cur.data); rss != 0 {
		t.Errorf("%d bytes of the mapping resident after dropping its pages, want 0", rss)
	}
	if m, ok := f.get(l); !ok || !bytes.Equal(m.bytes(), want) {
		t.Error("the answer does not read back after its pages were dropped")
	}
}

// newAnswerFile opens an answer file of max bytes for the test.
func newAnswerFile(t *testing.T, max int64) *answerFile {
	t.Helper()
	f, err := openAnswerFile(t.TempDir(), max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.close() })
	return f
}

// putGet keeps b in f and reads it back: its location, the generation it
// is in, and the answer to send.
func putGet(t *testing.T, f *answerFile, b []byte) (answerLoc, *answerGen, *encodedMessage) {
	t.Helper()
	l, ok := f.put(b)
	if !ok {
		t.Fatal("put refused")
	}
	g := f.cur
	m, ok := f.get(l)
	if !ok {
		t.Fatal("not read back")
	}
	return l, g, m
}

// mappingRSS is the resident size of the mapping that starts at data, from
// /proc/self/smaps.
func mappingRSS(t *testing.T, data []byte) int64 {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(&data[0])))
	in := false
	for _, line := range strings.Split(string(smaps), "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = strings.HasPrefix(line, start)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, "Rss:"), "%d kB", &kb); err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping at %s in /proc/self/smaps", start)
	return 0
}
