package catalogd

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"

	"google.golang.org/grpc/mem"
)

// answerFileName is the pattern of the file kept answers are written to;
// it is removed from its directory as soon as it is open.
const answerFileName = "catalogd-answers-*"

// answerFileFactor bounds the answer file at this many times the answer
// budget: answers the cache has evicted leave their bytes behind until
// the file starts over.
const answerFileFactor = 2

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// answerBufferBytes bounds the buffers kept for reuse by answerBuffers.
const answerBufferBytes = 32 << 20

// answerBuffers are the buffers answers are read into from the answer file.
// A buffer goes back once the transport has sent it, and is kept for the
// next read up to answerBufferBytes in all: unlike gRPC's default pool,
// which the collector empties, a busy server then reads its answers
// without allocating, and the heap does not churn by the size of every
// answer sent.
var answerBuffers mem.BufferPool = newBufferPool(answerBufferBytes)

// bufferPool is a mem.BufferPool of buffers whose capacities are powers of
// two, keeping at most max bytes of free buffers.
type bufferPool struct {
	mu   sync.Mutex
	free map[int][]*[]byte
	held int64
	max  int64
}

func newBufferPool(max int64) *bufferPool {
	return &bufferPool{free: map[int][]*[]byte{}, max: max}
}

// sizeClass is the smallest power of two not below n, at least 4 KiB.
func sizeClass(n int) int {
	c := 4 << 10
	for c < n {
		c <<= 1
	}
	return c
}

// Get implements mem.BufferPool.
func (p *bufferPool) Get(n int) *[]byte {
	c := sizeClass(n)
	p.mu.Lock()
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		p.held -= int64(c)
		p.mu.Unlock()
		*b = (*b)[:n]
		return b
	}
	p.mu.Unlock()
	b := make([]byte, n, c)
	return &b
}

// Put implements mem.BufferPool.
func (p *bufferPool) Put(b *[]byte) {
	c := cap(*b)
	if c != sizeClass(c) {
		return // not one of ours
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held+int64(c) <= p.max {
		p.free[c] = append(p.free[c], b)
		p.held += int64(c)
	}
}

// answerLoc is where one kept answer is: in memory (b), or in the answer
// file, written in generation gen at off.
type answerLoc struct {
	b   []byte
	gen uint64
	off int64
	n   int
	crc uint32
}

// answerFile keeps the bytes of encoded answers in a file that has no name
// (it is unlinked once open), so that they live in the page cache, which the
// kernel can reclaim, instead of in the Go heap. Answers are appended; when
// the file would grow past its bound it starts over empty, and the answers
// written before are gone (their locations name an older generation). Only
// catalogd's process can reach the file.
type answerFile struct {
	f   *os.File
	max int64
	// mu is held shared while an answer is read or written, exclusively
	// while the file starts over.
	mu   sync.RWMutex
	gen  uint64
	next int64
	// alloc guards next, so that writers get disjoint ranges.
	alloc sync.Mutex
}

// openAnswerFile creates the answer file in dir (os.TempDir() when empty)
// and removes its name at once.
func openAnswerFile(dir string, max int64) (*answerFile, error) {
	f, err := os.CreateTemp(dir, answerFileName)
	if err != nil {
		return nil, fmt.Errorf("creating the answer file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		return nil, errors.Join(fmt.Errorf("unlinking the answer file: %w", err), f.Close())
	}
	return &answerFile{f: f, max: max}, nil
}

// put appends b and returns where it is, or false when it cannot be kept.
func (a *answerFile) put(b []byte) (answerLoc, bool) {
	n := int64(len(b))
	if n == 0 || n > a.max {
		return answerLoc{}, false
	}
	for attempt := 0; attempt < 2; attempt++ {
		a.mu.RLock()
		a.alloc.Lock()
		off, gen := a.next, a.gen
		fits := off+n <= a.max
		if fits {
			a.next += n
		}
		a.alloc.Unlock()
		if !fits {
			a.mu.RUnlock()
			a.startOver(gen)
			continue
		}
		_, err := a.f.WriteAt(b, off)
		a.mu.RUnlock()
		if err != nil {
			return answerLoc{}, false
		}
		return answerLoc{gen: gen, off: off, n: len(b), crc: crc32.Checksum(b, crcTable)}, true
	}
	return answerLoc{}, false
}

// startOver empties the file, unless another writer did since generation
// gen.
func (a *answerFile) startOver(gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen {
		return
	}
	a.gen++
	a.next = 0
	// A failed truncation leaves the old bytes, which the next writes
	// overwrite; the file never grows past max either way.
	_ = a.f.Truncate(0)
}

// reset forgets every answer: the next write starts the file over.
func (a *answerFile) reset() {
	a.mu.RLock()
	gen := a.gen
	a.mu.RUnlock()
	a.startOver(gen)
}

// get reads the answer at l into a buffer of answerBuffers, or false when
// it is gone (the file started over since) or does not read back intact.
func (a *answerFile) get(l answerLoc) (*encodedMessage, bool) {
	pool := answerBuffers
	buf := pool.Get(l.n)
	a.mu.RLock()
	ok := a.gen == l.gen
	if ok {
		_, err := a.f.ReadAt(*buf, l.off)
		ok = err == nil
	}
	a.mu.RUnlock()
	if !ok || crc32.Checksum(*buf, crcTable) != l.crc {
		pool.Put(buf)
		return nil, false
	}
	return &encodedMessage{b: *buf, pooled: buf}, true
}

// close releases the file and with it the answers' bytes.
func (a *answerFile) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}
