package catalogd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc/mem"
)

// answerFileName is the pattern of the file kept answers are written to;
// it is removed from its directory as soon as it is open.
const answerFileName = "catalogd-answers-*"

// answerLoc is where one kept answer is: in memory (b), or in the answer
// file, written in generation gen at off.
type answerLoc struct {
	b   []byte
	gen uint64
	off int64
	n   int
}

// answerFile keeps the bytes of encoded answers in a file that has no name
// (it is unlinked once open), so that they live in the page cache, which the
// kernel can reclaim, instead of in the Go heap. Answers are appended, and
// read through a read-only shared mapping of the file: an answer is sent
// from the page cache itself, with no read into a buffer of the heap. When
// the file would grow past its bound it starts over in a new file, and the
// answers written before are gone (their locations name an older
// generation); the old file and its mapping go once the last answer sent
// from them is (answerGen). The file holds at most max bytes (answers the
// cache evicted leave theirs behind until it starts over), and it does not
// start over while the file it replaced is still held, so the disk holds
// at most two files, twice max. Only catalogd's process can reach the
// file.
type answerFile struct {
	dir string
	max int64
	// mu is held shared while an answer is read or written, exclusively
	// while the file starts over.
	mu  sync.RWMutex
	cur *answerGen
	// next is where the next answer goes in cur.
	next int64
	// alloc guards next, so that writers get disjoint ranges.
	alloc sync.Mutex
	// retired is the generation cur replaced, while answers being sent
	// may still hold it; cur does not start over until it is gone.
	retired *answerGen
	// closed: close was called; nothing is kept any more.
	closed bool
}

// answerGen is one generation of the answer file: the file and a mapping of
// its first max bytes. It is held once while it is the answer file's
// current generation and once per answer being sent from it; the last
// release unmaps and closes it, so no byte is read after it is gone.
type answerGen struct {
	gen  uint64
	f    *os.File
	data []byte
	refs atomic.Int64
}

// newAnswerGen creates the file of generation gen in dir, unlinks it and
// maps max bytes of it.
func newAnswerGen(dir string, max int64, gen uint64) (*answerGen, error) {
	f, err := os.CreateTemp(dir, answerFileName)
	if err != nil {
		return nil, fmt.Errorf("creating the answer file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		return nil, errors.Join(fmt.Errorf("unlinking the answer file: %w", err), f.Close())
	}
	// The mapping may reach past the end of the file: only bytes written
	// are ever read, and the file is never truncated while mapped.
	data, err := syscall.Mmap(int(f.Fd()), 0, int(max), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mapping the answer file: %w", err), f.Close())
	}
	g := &answerGen{gen: gen, f: f, data: data}
	g.refs.Store(1)
	return g, nil
}

// release drops one hold; the last unmaps the file and closes it.
func (g *answerGen) release() {
	if g.refs.Add(-1) == 0 {
		_ = syscall.Munmap(g.data)
		_ = g.f.Close()
	}
}

// answerHold is one answer's hold on the generation its bytes lie in. It is
// let go once: when the transport has sent the answer (Put), when the
// answer is freed unsent, or, should an answer be dropped without either,
// when the collector finds it unreachable (a cleanup set by message), so
// that a forgotten answer cannot keep a file mapped for good.
type answerHold struct {
	g *answerGen
	// sent: the answer's bytes were handed to the transport, which lets go
	// of them; the cleanup must not.
	sent atomic.Bool
	done atomic.Bool
}

func (h *answerHold) let() {
	if h.done.CompareAndSwap(false, true) {
		h.g.release()
	}
}

// Get implements mem.BufferPool; the transport never asks an answer's pool
// for a buffer.
func (h *answerHold) Get(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

// Put implements mem.BufferPool: the transport has sent the answer, or it
// is freed unsent.
func (h *answerHold) Put(*[]byte) { h.let() }

// openAnswerFile creates the answer file in dir (os.TempDir() when empty)
// and removes its name at once.
func openAnswerFile(dir string, max int64) (*answerFile, error) {
	g, err := newAnswerGen(dir, max, 0)
	if err != nil {
		return nil, err
	}
	return &answerFile{dir: dir, max: max, cur: g}, nil
}

// put appends b and returns where it is, or false when it cannot be kept.
func (a *answerFile) put(b []byte) (answerLoc, bool) {
	n := int64(len(b))
	if n == 0 || n > a.max {
		return answerLoc{}, false
	}
	for attempt := 0; attempt < 2; attempt++ {
		a.mu.RLock()
		if a.closed {
			a.mu.RUnlock()
			return answerLoc{}, false
		}
		a.alloc.Lock()
		off, g := a.next, a.cur
		fits := off+n <= a.max
		if fits {
			a.next += n
		}
		a.alloc.Unlock()
		if !fits {
			a.mu.RUnlock()
			a.startOver(g.gen)
			continue
		}
		_, err := g.f.WriteAt(b, off)
		a.mu.RUnlock()
		if err != nil {
			return answerLoc{}, false
		}
		return answerLoc{gen: g.gen, off: off, n: len(b)}, true
	}
	return answerLoc{}, false
}

// startOver moves to a new, empty file, unless another writer did since
// generation gen. Answers being sent from the old one keep it until they
// are sent. While the file replaced before is still held (a client slow to
// read a large answer), and when no new file can be made, the full one
// stays: its answers are still served, and new answers are not kept; disk
// use stays within two files.
func (a *answerFile) startOver(gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.cur.gen != gen || a.retired != nil && a.retired.refs.Load() > 0 {
		return
	}
	g, err := newAnswerGen(a.dir, a.max, gen+1)
	if err != nil {
		return
	}
	old := a.cur
	a.cur, a.next, a.retired = g, 0, old
	old.release()
}

// reset forgets every answer: the next write starts the file over.
func (a *answerFile) reset() {
	a.mu.RLock()
	gen := a.cur.gen
	a.mu.RUnlock()
	a.startOver(gen)
}

// hold returns the bytes at l in the current generation, held until the
// generation's release, or false when the file started over since.
func (a *answerFile) hold(gen uint64, off int64, n int) ([]byte, *answerGen, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	g := a.cur
	if a.closed || g.gen != gen || off < 0 || n < 0 || off+int64(n) > a.max {
		return nil, nil, false
	}
	g.refs.Add(1)
	end := off + int64(n)
	return g.data[off:end:end], g, true
}

// read returns a copy of the n bytes at off of generation gen, or false
// when the file started over since.
func (a *answerFile) read(gen uint64, off int64, n int) ([]byte, bool) {
	b, g, ok := a.hold(gen, off, n)
	if !ok {
		return nil, false
	}
	c := bytes.Clone(b)
	g.release()
	return c, true
}

// get returns the answer at l as it lies in the file's mapping, or false
// when it is gone (the file started over since). The answer holds its
// generation until it is sent or freed.
func (a *answerFile) get(l answerLoc) (*encodedMessage, bool) {
	return a.message(l.gen, l.off, l.n)
}

// message is the n bytes at off of generation gen as an answer to send, if
// they are still there. The bytes are not checked again: the file is
// catalogd's own, without a name, and a page the kernel evicted comes back
// from the pod's volume as any file catalogd reads does (a checksum over
// every answer sent cost a fifth of catalogd's CPU per answer).
func (a *answerFile) message(gen uint64, off int64, n int) (*encodedMessage, bool) {
	b, g, ok := a.hold(gen, off, n)
	if !ok {
		return nil, false
	}
	if mem.IsBelowBufferPoolingThreshold(len(b)) {
		// The transport takes no hold on small buffers, so it would never
		// say when it is done with them: send a copy.
		c := bytes.Clone(b)
		g.release()
		return &encodedMessage{b: c}, true
	}
	h := &answerHold{g: g}
	m := &encodedMessage{b: b, owner: h}
	runtime.AddCleanup(m, func(h *answerHold) {
		if !h.sent.Load() {
			h.let()
		}
	}, h)
	return m, true
}

// dropPages unmaps the pages of the current file from catalogd's memory;
// they stay in the page cache, and the next read maps them again.
func (a *answerFile) dropPages() {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.closed {
		_ = syscall.Madvise(a.cur.data, syscall.MADV_DONTNEED)
	}
}

// close releases the file and with it the answers' bytes, once the answers
// being sent are.
func (a *answerFile) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.cur.release()
	return nil
}
