// Package hashfile keeps a map from uint64 to uint64 in a file, so that a
// process's memory does not grow with the number of keys.
//
// It is built for keys that are already hashes (uniform 64-bit values),
// such as the dedupe state of a stage: a Table spreads them over 256
// shards by their top bits, and each shard is an open-addressing table
// with linear probing, a region of 16-byte slots somewhere in the file.
// A shard grows by doubling into a new region at the file's end; the old
// region's disk blocks are given back to the file system (a hole punched
// in the file), so the file takes about as much disk as its live regions:
// at least 1 MiB, then 21 to 43 bytes a key.
//
// Lookups and updates read and write the file with pread and pwrite, never
// through a memory mapping: what the operating system caches of the file
// is its page cache, which it reclaims as it needs, not the process's
// resident memory. The Table itself holds 4 KiB of shard directory
// whatever the number of keys; growing a shard of n keys takes about
// 48·n bytes for a moment.
//
// The file is scratch space, not a database: no write is synced, and a
// crashed process's file is of no use to the next one. Its owner rebuilds
// the map from wherever the truth lives (for a stage, its changelog
// topic). A Table is not safe for concurrent use.
package hashfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"

	"golang.org/x/sys/unix"
)

const (
	shardBits = 8
	shards    = 1 << shardBits
	slotSize  = 16 // the key, then its value, little-endian
	// minSlots makes every region a whole number of 4 KiB blocks, at
	// offsets that are multiples of 4 KiB, so that a grown shard's old
	// region is whole blocks to give back.
	minSlots = 4096 / slotSize
	// window is how many slots one read probes: at a load of at most
	// three quarters, a key is almost always within the first few slots
	// after its home.
	window = 16
)

// shard is a directory entry: where the shard's slots are in the file.
type shard struct {
	off   int64  // of its region
	slots uint32 // a power of two; 0 before its first key
	count uint32
}

// Table is a uint64 → uint64 map kept in a file.
type Table struct {
	f      *os.File
	shards []shard
	end    int64 // the file's size: regions are appended
	n      int
	// The zero key marks an empty slot, so it is kept here.
	zero    uint64
	hasZero bool
	buf     [window * slotSize]byte
}

// Create makes a new, empty Table in a new file at path.
func Create(path string) (*Table, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the owner's own scratch file
	if err != nil {
		return nil, fmt.Errorf("hashfile: %w", err)
	}
	return &Table{f: f, shards: make([]shard, shards)}, nil
}

// Len is the number of keys.
func (t *Table) Len() int { return t.n }

// Close closes the Table and removes its file.
func (t *Table) Close() error {
	return errors.Join(t.f.Close(), os.Remove(t.f.Name()))
}

// Get returns the value of key k.
func (t *Table) Get(k uint64) (v uint64, ok bool, err error) {
	if k == 0 {
		return t.zero, t.hasZero, nil
	}
	s := &t.shards[k>>(64-shardBits)]
	if s.slots == 0 {
		return 0, false, nil
	}
	_, v, ok, err = t.probe(s, k)
	return v, ok, err
}

// Put sets the value of key k.
func (t *Table) Put(k, v uint64) error {
	if k == 0 {
		if !t.hasZero {
			t.n++
		}
		t.zero, t.hasZero = v, true
		return nil
	}
	s := &t.shards[k>>(64-shardBits)]
	if uint64(s.count+1)*4 > uint64(s.slots)*3 {
		if err := t.grow(s); err != nil {
			return err
		}
	}
	i, _, found, err := t.probe(s, k)
	if err != nil {
		return err
	}
	var slot [slotSize]byte
	binary.LittleEndian.PutUint64(slot[0:8], k)
	binary.LittleEndian.PutUint64(slot[8:16], v)
	if _, err := t.f.WriteAt(slot[:], s.off+int64(i)*slotSize); err != nil {
		return fmt.Errorf("hashfile: %w", err)
	}
	if !found {
		s.count++
		t.n++
	}
	return nil
}

// Delete removes key k. It rewrites k's shard, so it is for the rare key:
// Put and Get are the common path.
func (t *Table) Delete(k uint64) error {
	if k == 0 {
		if t.hasZero {
			t.n--
		}
		t.zero, t.hasZero = 0, false
		return nil
	}
	s := &t.shards[k>>(64-shardBits)]
	if s.slots == 0 {
		return nil
	}
	old, err := t.read(s)
	if err != nil {
		return err
	}
	region := make([]byte, len(old))
	count := uint32(0)
	for j := 0; j < len(old); j += slotSize {
		key := binary.LittleEndian.Uint64(old[j:])
		if key != 0 && key != k {
			place(region, s.slots, key, binary.LittleEndian.Uint64(old[j+8:]))
			count++
		}
	}
	if count == s.count {
		return nil // k was not there
	}
	if _, err := t.f.WriteAt(region, s.off); err != nil {
		return fmt.Errorf("hashfile: %w", err)
	}
	s.count = count
	t.n--
	return nil
}

// home is the slot where key k's probe starts in a shard of n slots: the
// key's bits after the shard's.
func home(k uint64, n uint32) uint32 {
	return uint32((k << shardBits) >> (64 - bits.TrailingZeros32(n))) // #nosec G115 -- below n, a uint32
}

// probe finds key k in shard s and its value, or the empty slot where it
// would go.
func (t *Table) probe(s *shard, k uint64) (slot uint32, v uint64, found bool, err error) {
	i := home(k, s.slots)
	for seen := uint32(0); seen < s.slots; {
		n := min(window, s.slots-i) // to the region's end, then from its start
		b := t.buf[:n*slotSize]
		if _, err := t.f.ReadAt(b, s.off+int64(i)*slotSize); err != nil {
			return 0, 0, false, fmt.Errorf("hashfile: %w", err)
		}
		for j := range n {
			switch binary.LittleEndian.Uint64(b[j*slotSize:]) {
			case k:
				return i + j, binary.LittleEndian.Uint64(b[j*slotSize+8:]), true, nil
			case 0:
				return i + j, 0, false, nil
			}
		}
		seen += n
		i = (i + n) % s.slots
	}
	// Unreachable while the load stays under three quarters.
	return 0, 0, false, errors.New("hashfile: shard full")
}

// read returns shard s's whole region.
func (t *Table) read(s *shard) ([]byte, error) {
	b := make([]byte, int(s.slots)*slotSize)
	if _, err := t.f.ReadAt(b, s.off); err != nil {
		return nil, fmt.Errorf("hashfile: %w", err)
	}
	return b, nil
}

// grow moves shard s into a region of twice its slots (minSlots at first)
// and gives the old region's blocks back.
func (t *Table) grow(s *shard) error {
	slots := max(minSlots, 2*s.slots)
	region := make([]byte, int(slots)*slotSize)
	if s.slots > 0 {
		old, err := t.read(s)
		if err != nil {
			return err
		}
		for j := 0; j < len(old); j += slotSize {
			if key := binary.LittleEndian.Uint64(old[j:]); key != 0 {
				place(region, slots, key, binary.LittleEndian.Uint64(old[j+8:]))
			}
		}
	}
	off := t.end
	if _, err := t.f.WriteAt(region, off); err != nil {
		return fmt.Errorf("hashfile: %w", err)
	}
	t.end += int64(len(region))
	if s.slots > 0 {
		// Best effort: a file system without hole punching keeps the
		// blocks, and the Table works the same.
		_ = unix.Fallocate(int(t.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, s.off, int64(s.slots)*slotSize) // #nosec G115 -- a file descriptor fits an int
	}
	s.off, s.slots = off, slots
	return nil
}

// place puts a key known to be absent into an in-memory region of n slots.
func place(region []byte, n uint32, k, v uint64) {
	for i := home(k, n); ; i = (i + 1) % n {
		b := region[int(i)*slotSize:]
		if binary.LittleEndian.Uint64(b) == 0 {
			binary.LittleEndian.PutUint64(b[0:8], k)
			binary.LittleEndian.PutUint64(b[8:16], v)
			return
		}
	}
}
