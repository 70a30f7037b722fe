package catalogd

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"
)

// answerFileName is the pattern of the file kept answers are written to;
// it is removed from its directory as soon as it is open.
const answerFileName = "catalogd-answers-*"

// answerFileFactor bounds the answer file at this many times the answer
// budget: answers the cache has evicted leave their bytes behind until
// the file starts over.
const answerFileFactor = 2

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// answerChunkSize is the size of the buffers an answer read from the
// answer file is read into: a large answer takes several, and the transport
// returns each to answerBuffers as soon as its bytes are written to the
// connection, not when the whole answer is.
const answerChunkSize = 64 << 10

// answerBufferBytes bounds the free buffers answerBuffers keeps for reuse
// (128 of answerChunkSize): more than the answers eight concurrent clients
// of the community catalog's channel heads have in flight at once most of
// the time; beyond it a buffer is allocated and left to the collector.
const answerBufferBytes = 8 << 20

// answerBuffers are the buffers answers are read into from the answer file.
// A buffer goes back once the transport has sent it, and is kept for the
// next read up to answerBufferBytes in all: unlike gRPC's default pool,
// which the collector empties, a busy server then reads its answers
// without allocating, and the heap does not churn by the size of every
// answer sent. All buffers have one size, so any answer can use any free
// buffer.
var answerBuffers = newChunkPool(answerChunkSize, answerBufferBytes)

// chunkPool is a mem.BufferPool of buffers of one size keeping at most
// maxBytes of free buffers.
type chunkPool struct {
	size int
	free chan *[]byte
}

func newChunkPool(size, maxBytes int) *chunkPool {
	return &chunkPool{size: size, free: make(chan *[]byte, max(maxBytes/size, 1))}
}

// Get implements mem.BufferPool: a buffer of length n, which must not be
// over the pool's size.
func (p *chunkPool) Get(n int) *[]byte {
	if n > p.size {
		b := make([]byte, n)
		return &b
	}
	select {
	case b := <-p.free:
		*b = (*b)[:n]
		return b
	default:
		b := make([]byte, n, p.size)
		return &b
	}
}

// Put implements mem.BufferPool; buffers of another size are not kept.
func (p *chunkPool) Put(b *[]byte) {
	if cap(*b) != p.size {
		return
	}
	*b = (*b)[:p.size]
	select {
	case p.free <- b:
	default:
	}
}

// trim drops the free buffers kept, for the collector to free.
func (p *chunkPool) trim() {
	for {
		select {
		case <-p.free:
		default:
			return
		}
	}
}

// held is the bytes of free buffers kept.
func (p *chunkPool) held() int { return len(p.free) * p.size }

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

// get reads the answer at l into buffers of answerBuffers, or false when
// it is gone (the file started over since) or does not read back intact.
func (a *answerFile) get(l answerLoc) (*encodedMessage, bool) {
	if l.n <= 0 {
		return nil, false
	}
	pool := answerBuffers
	chunks := make([]*[]byte, 0, (l.n+pool.size-1)/pool.size)
	a.mu.RLock()
	ok := a.gen == l.gen
	var crc uint32
	for off := 0; ok && off < l.n; off += pool.size {
		buf := pool.Get(min(pool.size, l.n-off))
		chunks = append(chunks, buf)
		_, err := a.f.ReadAt(*buf, l.off+int64(off))
		ok = err == nil
		crc = crc32.Update(crc, crcTable, *buf)
	}
	a.mu.RUnlock()
	m := &encodedMessage{chunks: chunks}
	if !ok || crc != l.crc {
		m.free()
		return nil, false
	}
	return m, true
}

// readAt fills b from off of generation gen, or returns false when the
// file started over since or cannot be read.
func (a *answerFile) readAt(gen uint64, b []byte, off int64) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.gen != gen {
		return false
	}
	_, err := a.f.ReadAt(b, off)
	return err == nil
}

// close releases the file and with it the answers' bytes.
func (a *answerFile) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}
