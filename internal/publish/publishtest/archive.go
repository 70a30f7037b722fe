package publishtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// ZeroEntryTarGz returns a valid tar.gz holding one entry of size bytes of
// zeros, without materializing them: once the compressor's window holds only
// zeros, every MiB of zeros compresses to the same bytes, so the compressed
// stream is made of copies of one block. The gzip trailer carries the real
// CRC-32 and length.
func ZeroEntryTarGz(t testing.TB, name string, size int64) []byte {
	t.Helper()
	const mib = 1 << 20
	if size%mib != 0 || size < 4*mib {
		t.Fatalf("size %d: a multiple of 1 MiB, at least 4 MiB", size)
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	// The stream after the header: size zeros, then the two zero blocks
	// that end a tar archive.
	tail := make([]byte, 1024)
	zeros := make([]byte, mib)

	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	write := func(p []byte) int {
		if _, err := zw.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		return out.Len()
	}
	write(hdr.Bytes())
	a := write(zeros)
	b := write(zeros)
	c := write(zeros)
	block := bytes.Clone(out.Bytes()[a:b])
	if !bytes.Equal(block, out.Bytes()[b:c]) {
		t.Fatal("the compressor does not repeat itself on zeros; cannot build the archive")
	}
	prefix := bytes.Clone(out.Bytes()[:c])
	if _, err := zw.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	final := bytes.Clone(out.Bytes()[c : out.Len()-8]) // the last block, without the trailer

	var gz bytes.Buffer
	gz.Write(prefix) // header + 3 MiB of zeros
	for range size/mib - 3 {
		gz.Write(block)
	}
	gz.Write(final)
	crc := crc32.ChecksumIEEE(hdr.Bytes())
	for range size / mib {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	crc = crc32.Update(crc, crc32.IEEETable, tail)
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(int64(hdr.Len())+size+int64(len(tail))))
	gz.Write(trailer[:])
	return gz.Bytes()
}
