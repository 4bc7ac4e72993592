package main

import (
	"encoding/binary"
	"iter"
	"slices"
	"time"
)

// records are one partition's buffered records, copied out of the fetch
// (so that the fetch's buffers are not kept) and packed: each is a fixed
// header (offset, timestamp, leader epoch, key and value lengths)
// followed by its key and value, appended to the last of a few chunks of
// bytes. A record costs its bytes and the header, not two allocations and
// a struct of slices; held, the bytes the chunks allocated, is what it
// really takes in memory, and what LAKE_MAX_BUFFER counts.
//
// Chunks start small and double up to maxChunk, so that a partition with
// little buffered holds little; a record larger than a chunk gets one of
// its own. A chunk never moves once allocated (unlike a slice grown by
// append, which holds the old array and the new one while it copies), so
// the records' keys and values can be handed out without copying.
type records struct {
	chunks [][]byte
	n      int // records
	values int // bytes of the records' values, what LAKE_MAX_BYTES counts
	held   int // bytes allocated by the chunks, what LAKE_MAX_BUFFER counts
	// first and last are the first and the last record, their key and
	// value in the chunks.
	first, last buffered
}

// buffered is one record waiting for its cut; its key and value are in the chunks of
// its records, to be read and not kept once the records are cut.
type buffered struct {
	offset     int64
	epoch      int32
	ts         time.Time
	key, value []byte
}

// headerSize is the bytes of a record's header: offset, seconds and
// nanoseconds of its timestamp, leader epoch, key length (-1 for a null
// key) and value length.
const headerSize = 8 + 8 + 4 + 4 + 4 + 4

// The chunks of a partition's records: the first minChunk bytes, each next
// one as large as all before, up to maxChunk.
const (
	minChunk = 4 << 10
	maxChunk = 256 << 10
)

// size is the bytes r takes in a chunk.
func (r *buffered) size() int { return headerSize + len(r.key) + len(r.value) }

// fits reports whether a record of size bytes fits in the last chunk.
func (b *records) fits(size int) bool {
	if len(b.chunks) == 0 {
		return false
	}
	c := b.chunks[len(b.chunks)-1]
	return cap(c)-len(c) >= size
}

// newChunk allocates a chunk for a record of size bytes that does not fit
// in the last one: room is the bytes still free under the cap, so a new
// chunk does not take more than that unless the record needs it. The
// chunk's capacity is what the allocator gave, its size class included.
func (b *records) newChunk(size, room int) []byte {
	n := min(max(b.held, minChunk), maxChunk, room)
	return slices.Grow([]byte(nil), max(n, size))
}

// add appends r to chunk c, a new chunk from newChunk or nil for the last
// one (fits said so), and returns the bytes allocated for it: c's
// capacity, or 0.
func (b *records) add(r buffered, c []byte) int {
	grew := 0
	if c != nil {
		b.chunks = append(b.chunks, c)
		b.held += cap(c)
		grew = cap(c)
	}
	last := &b.chunks[len(b.chunks)-1]
	at := len(*last)
	buf := binary.LittleEndian.AppendUint64(*last, uint64(r.offset))       // #nosec G115 -- stored as is, read back as int64
	buf = binary.LittleEndian.AppendUint64(buf, uint64(r.ts.Unix()))       // #nosec G115 -- idem
	buf = binary.LittleEndian.AppendUint32(buf, uint32(r.ts.Nanosecond())) // #nosec G115 -- in [0, 1e9)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(r.epoch))           // #nosec G115 -- stored as is, read back as int32
	keyLen := int32(-1)
	if r.key != nil {
		keyLen = int32(len(r.key)) // #nosec G115 -- a Kafka record is far smaller than 2 GiB
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(keyLen))       // #nosec G115 -- idem
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.value))) // #nosec G115 -- idem
	buf = append(buf, r.key...)
	buf = append(buf, r.value...)
	*last = buf
	stored, _ := decode(buf[at:])
	if b.n == 0 {
		b.first = stored
	}
	b.last = stored
	b.n++
	b.values += len(r.value)
	return grew
}

// decode reads the record at the start of buf and returns it and its
// size.
func decode(buf []byte) (buffered, int) {
	r := buffered{
		offset: int64(binary.LittleEndian.Uint64(buf)), // #nosec G115 -- written from an int64
		ts: time.Unix(int64(binary.LittleEndian.Uint64(buf[8:])), // #nosec G115 -- idem
			int64(binary.LittleEndian.Uint32(buf[16:]))).UTC(),
		epoch: int32(binary.LittleEndian.Uint32(buf[20:])), // #nosec G115 -- written from an int32
	}
	keyLen := int(int32(binary.LittleEndian.Uint32(buf[24:]))) // #nosec G115 -- idem
	valueLen := int(binary.LittleEndian.Uint32(buf[28:]))
	at := headerSize
	if keyLen >= 0 {
		r.key = buf[at : at+keyLen : at+keyLen]
		at += keyLen
	}
	r.value = buf[at : at+valueLen : at+valueLen]
	return r, at + valueLen
}

// all yields the records in the order they were added.
func (b *records) all() iter.Seq[buffered] {
	return func(yield func(buffered) bool) {
		for _, c := range b.chunks {
			for len(c) > 0 {
				r, n := decode(c)
				if !yield(r) {
					return
				}
				c = c[n:]
			}
		}
	}
}

// from returns the records at or above offset end, copied into chunks of
// their own so that those of b can be freed.
func (b *records) from(end int64) records {
	var kept records
	for r := range b.all() {
		if r.offset < end {
			continue
		}
		var c []byte
		if !kept.fits(r.size()) {
			c = kept.newChunk(r.size(), maxChunk)
		}
		kept.add(r, c)
	}
	return kept
}
