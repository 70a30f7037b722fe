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
		return m.b
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
			if !ok || m.pooled == nil {
				t.Fatalf("read back: %v, pooled buffer %v", ok, m)
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
				if ok && !bytes.Equal(m.b, want) {
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

// TestBufferPool: buffers come back for reuse by size class, within the
// pool's bound; foreign buffers are not kept.
func TestBufferPool(t *testing.T) {
	p := newBufferPool(64 << 10)
	a := p.Get(5000)
	if len(*a) != 5000 || cap(*a) != 8<<10 {
		t.Fatalf("Get(5000): len %d cap %d, want 5000 and 8192", len(*a), cap(*a))
	}
	p.Put(a)
	if b := p.Get(6000); b != a || len(*b) != 6000 {
		t.Errorf("Get(6000) after Put: a new buffer (%p, want %p) or len %d", b, a, len(*b))
	}
	foreign := make([]byte, 5000)
	p.Put(&foreign)
	if b := p.Get(5000); b == &foreign {
		t.Error("a buffer of another pool was reused")
	}
	big := p.Get(100 << 10) // 128 KiB class, over the bound
	p.Put(big)
	if p.held != 0 {
		t.Errorf("%d bytes held after putting a buffer over the bound", p.held)
	}
	for range 8 {
		p.Put(p.Get(8 << 10))
	}
	small := make([]*[]byte, 9)
	for i := range small {
		small[i] = p.Get(8 << 10)
	}
	for _, b := range small {
		p.Put(b)
	}
	if p.held > p.max {
		t.Errorf("%d bytes held, bound %d", p.held, p.max)
	}
}
