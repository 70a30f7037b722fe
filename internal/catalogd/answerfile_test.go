package catalogd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
)

// TestAnswerFile: answers read back byte for byte until the file starts
// over or is damaged, and the file never grows past its bound nor keeps a
// name in its directory.
func TestAnswerFile(t *testing.T) {
	dir := t.TempDir()
	f, err := openAnswerFile(dir, 100)
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
	a, b := bytes.Repeat([]byte("a"), 40), bytes.Repeat([]byte("b"), 40)
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
			if !ok || len(m.chunks) != 1 {
				t.Fatalf("read back: %v, pooled buffers %v", ok, m)
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
			if _, ok := f.put(make([]byte, 101)); ok {
				t.Error("answer over the bound kept")
			}
		}, loc: &lb, want: b},
		{name: "damaged bytes do not read back", action: func(t *testing.T) {
			if _, err := f.f.WriteAt([]byte("x"), lb.off); err != nil {
				t.Fatal(err)
			}
		}, loc: &lb, want: nil},
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
			st, err := f.f.Stat()
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
	f, err := openAnswerFile(t.TempDir(), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.close() })
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

// TestAnswerFileChunks: an answer larger than a buffer is read into
// several, sent as they are, and every buffer goes back to the pool once the
// transport frees it.
func TestAnswerFileChunks(t *testing.T) {
	f, err := openAnswerFile(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.close() })
	tests := []struct {
		name   string
		size   int
		chunks int
	}{
		{name: "one byte", size: 1, chunks: 1},
		{name: "exactly one buffer", size: answerChunkSize, chunks: 1},
		{name: "one byte over a buffer", size: answerChunkSize + 1, chunks: 2},
		{name: "several buffers and a short one", size: 3*answerChunkSize + 1000, chunks: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, tt.size)
			for i := range want {
				want[i] = byte(i * 7)
			}
			l, ok := f.put(want)
			if !ok {
				t.Fatal("put refused")
			}
			m, ok := f.get(l)
			if !ok {
				t.Fatal("not read back")
			}
			if len(m.chunks) != tt.chunks {
				t.Errorf("%d buffers, want %d", len(m.chunks), tt.chunks)
			}
			out, err := newPassthroughCodec().Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if m.chunks != nil {
				t.Error("the message still holds the buffers it gave the transport")
			}
			if got := out.Materialize(); !bytes.Equal(got, want) {
				t.Errorf("marshalled %d bytes differing from the %d put", len(got), len(want))
			}
			before := answerBuffers.held()
			out.Free()
			if got := answerBuffers.held() - before; got != tt.chunks*answerChunkSize && answerBuffers.held() < answerBufferBytes {
				t.Errorf("%d bytes back in the pool after the transport freed the answer, want %d", got, tt.chunks*answerChunkSize)
			}
			// In process, the bytes are joined and the buffers returned.
			m, ok = f.get(l)
			if !ok {
				t.Fatal("not read back the second time")
			}
			if got := m.bytes(); !bytes.Equal(got, want) {
				t.Errorf("joined %d bytes differing from the %d put", len(got), len(want))
			}
			if m.chunks != nil {
				t.Error("buffers kept after joining")
			}
		})
	}
}

// TestChunkPool: buffers come back for reuse within the pool's bound;
// buffers of another size are not kept.
func TestChunkPool(t *testing.T) {
	const size = 4 << 10
	tests := []struct {
		name string
		run  func(t *testing.T, p *chunkPool)
	}{
		{name: "a buffer is reused at any length", run: func(t *testing.T, p *chunkPool) {
			a := p.Get(5)
			if len(*a) != 5 || cap(*a) != size {
				t.Fatalf("Get(5): len %d cap %d, want 5 and %d", len(*a), cap(*a), size)
			}
			p.Put(a)
			if b := p.Get(size); b != a || len(*b) != size {
				t.Errorf("Get(%d) after Put: a new buffer (%p, want %p) or len %d", size, b, a, len(*b))
			}
		}},
		{name: "a buffer of another size is not kept", run: func(t *testing.T, p *chunkPool) {
			foreign := make([]byte, 100, 2*size)
			p.Put(&foreign)
			if p.held() != 0 {
				t.Errorf("%d bytes held", p.held())
			}
		}},
		{name: "a request over the size gets a buffer of its own", run: func(t *testing.T, p *chunkPool) {
			b := p.Get(size + 1)
			if len(*b) != size+1 {
				t.Fatalf("len %d", len(*b))
			}
			p.Put(b)
			if p.held() != 0 {
				t.Errorf("%d bytes held", p.held())
			}
		}},
		{name: "free buffers stay within the bound", run: func(t *testing.T, p *chunkPool) {
			bufs := make([]*[]byte, 9)
			for i := range bufs {
				bufs[i] = p.Get(size)
			}
			for _, b := range bufs {
				p.Put(b)
			}
			if p.held() != 8*size {
				t.Errorf("%d bytes held, want the bound %d", p.held(), 8*size)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newChunkPool(size, 8*size)) })
	}
}
