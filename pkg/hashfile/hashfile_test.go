package hashfile

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

func newTable(t testing.TB) *Table {
	t.Helper()
	tab, err := Create(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tab.Close() })
	return tab
}

// TestTableAgreesWithAMap runs random puts, overwrites and deletes against
// a Table and a Go map, and compares every key, present or not.
func TestTableAgreesWithAMap(t *testing.T) {
	tab := newTable(t)
	want := map[uint64]uint64{}
	rng := rand.New(rand.NewPCG(1, 2))
	var keys []uint64
	for i := range 200_000 {
		switch op := rng.IntN(10); {
		case op < 6 || len(keys) == 0: // a new key
			k := rng.Uint64()
			if i%50_000 == 0 {
				k = 0 // the key an empty slot is made of
			}
			keys = append(keys, k)
			want[k] = rng.Uint64()
			if err := tab.Put(k, want[k]); err != nil {
				t.Fatal(err)
			}
		case op < 9: // a new value for a known key
			k := keys[rng.IntN(len(keys))]
			want[k] = rng.Uint64()
			if err := tab.Put(k, want[k]); err != nil {
				t.Fatal(err)
			}
		default:
			k := keys[rng.IntN(len(keys))]
			delete(want, k)
			if err := tab.Delete(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if tab.Len() != len(want) {
		t.Errorf("Len() = %d, want %d", tab.Len(), len(want))
	}
	for _, k := range keys {
		v, ok, err := tab.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if w, in := want[k]; ok != in || v != w {
			t.Fatalf("Get(%#x) = %d, %t; want %d, %t", k, v, ok, w, in)
		}
	}
	for range 10_000 { // keys never put
		k := rng.Uint64()
		if _, in := want[k]; in {
			continue
		}
		if _, ok, err := tab.Get(k); err != nil || ok {
			t.Fatalf("Get(%#x) of a key never put = %t, %v", k, ok, err)
		}
	}
}

// TestTableGivesGrownShardsBlocksBack: the file's disk usage follows the
// live regions, not every region a shard ever had.
func TestTableGivesGrownShardsBlocksBack(t *testing.T) {
	tab := newTable(t)
	const keys = 500_000
	rng := rand.New(rand.NewPCG(3, 4))
	for range keys {
		if err := tab.Put(rng.Uint64(), 1); err != nil {
			t.Fatal(err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(tab.f.Name(), &st); err != nil {
		t.Fatal(err)
	}
	live := int64(0)
	for _, s := range tab.shards {
		live += int64(s.slots) * slotSize
	}
	used := st.Blocks * 512
	t.Logf("%d keys: %d bytes of live regions, %d on disk, file size %d", keys, live, used, st.Size)
	if used > live+live/4 {
		t.Errorf("%d bytes on disk for %d of live regions: the grown shards' old regions were not given back", used, live)
	}
	if live > keys*slotSize*4 {
		t.Errorf("%d bytes of live regions for %d keys: load under a quarter", live, keys)
	}
}

func TestCloseRemovesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	tab, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Put(42, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over a live table's file = %v, want an error wrapping fs.ErrExist", err)
	}
	if err := tab.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, Stat = %v, want the file gone", err)
	}
}

// BenchmarkTable reports the cost of a lookup and of an update in a table
// of 1M keys, and the Go heap the table holds (bytes per key).
func BenchmarkTable(b *testing.B) {
	const keys = 1_000_000
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := newTable(b)
	rng := rand.New(rand.NewPCG(5, 6))
	ks := make([]uint64, keys)
	for i := range ks {
		ks[i] = rng.Uint64()
		if err := tab.Put(ks[i], uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc) - float64(len(ks)*8)
	b.Run("get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok, err := tab.Get(ks[i%keys]); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
		b.ReportMetric(heap/keys, "heap-B/key")
	})
	b.Run("put", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := tab.Put(ks[i%keys], uint64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
