package resman

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

// The read-ahead iterator against a model: random data (empty keys, empty values, values
// larger than the largest batch buffer) and random sequences of seeks, Next and Prev, with
// turns inside and at the edges of batches. After every call the iterator must be where the
// model is, with the model's key and value.
func TestIteratorMatchesAModel(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { iteratorModel(t, seed) })
	}
}

type kv struct{ k, v []byte }

func iteratorModel(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	db := openTemp(t)
	defer db.Close()
	cf := db.Default()
	m := map[string][]byte{}
	n := r.IntN(400)
	for i := 0; i < n; i++ {
		k := make([]byte, r.IntN(5))
		for j := range k {
			k[j] = byte('a' + r.IntN(4))
		}
		var v []byte
		switch r.IntN(20) {
		case 0: // larger than iterMaxBuf: the too-small path
			v = bytes.Repeat([]byte{byte(i)}, iterMaxBuf+r.IntN(1000))
		case 1:
			v = nil
		default:
			v = bytes.Repeat([]byte{byte(i)}, r.IntN(300))
		}
		m[string(k)] = v
		if err := cf.Put(k, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	var model []kv
	for k, v := range m {
		model = append(model, kv{[]byte(k), v})
	}
	sort.Slice(model, func(i, j int) bool { return bytes.Compare(model[i].k, model[j].k) < 0 })

	it, err := cf.NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	at := -1 // the model's position; -1: not on an entry
	for step := 0; step < 3000; step++ {
		var ok bool
		var what string
		key := make([]byte, r.IntN(5))
		for j := range key {
			key[j] = byte('a' + r.IntN(4))
		}
		switch c := r.IntN(40); {
		case c == 0:
			what, ok = "SeekToFirst", it.SeekToFirst()
			at = min(0, len(model)-1)
		case c == 1:
			what, ok = "SeekToLast", it.SeekToLast()
			at = len(model) - 1
		case c == 2:
			what, ok = fmt.Sprintf("Seek(%q)", key), it.Seek(key)
			at = sort.Search(len(model), func(i int) bool { return bytes.Compare(model[i].k, key) >= 0 })
			if at == len(model) {
				at = -1
			}
		case c == 3:
			what, ok = fmt.Sprintf("SeekForPrev(%q)", key), it.SeekForPrev(key)
			at = sort.Search(len(model), func(i int) bool { return bytes.Compare(model[i].k, key) > 0 }) - 1
		case c < 25:
			what, ok = "Next", it.Next()
			if at >= 0 {
				at++
				if at == len(model) {
					at = -1
				}
			}
		default:
			what, ok = "Prev", it.Prev()
			if at >= 0 {
				at--
			}
		}
		if ok != (at >= 0) || it.Valid() != ok || it.Err() != nil {
			t.Fatalf("step %d %s: ok %v valid %v err %v, model at %d of %d", step, what, ok, it.Valid(), it.Err(), at, len(model))
		}
		if ok {
			if !bytes.Equal(it.Key(), model[at].k) || !bytes.Equal(it.Value(), model[at].v) {
				t.Fatalf("step %d %s: at %q (%d bytes), model %q (%d bytes)", step, what, it.Key(), len(it.Value()), model[at].k, len(model[at].v))
			}
		}
	}
}

// A long scan makes one call per batch, not per entry, and sees every entry once.
func TestIteratorScanReadsAheadAndStopsAtBounds(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	cf := db.Default()
	b, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 0; i < 5000; i++ {
		must(b.Put(cf, []byte(fmt.Sprintf("k%05d", i)), []byte(fmt.Sprint(i))))
	}
	must(b.Write(nil))
	it, err := cf.NewIterator(&IterOptions{LowerBound: []byte("k01000"), UpperBound: []byte("k04000")})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	want := 1000
	for k, v := range it.All() {
		if string(k) != fmt.Sprintf("k%05d", want) || string(v) != fmt.Sprint(want) {
			t.Fatalf("entry %q=%q, want k%05d", k, v, want)
		}
		want++
	}
	if it.Err() != nil || want != 4000 {
		t.Fatalf("scan ended at %d: %v", want, it.Err())
	}
	if it.want != maxIterBatch {
		t.Errorf("after a 3000-entry scan the batch is %d entries, want %d", it.want, maxIterBatch)
	}
	// Backwards from the upper bound, across batches.
	want = 3999
	for ok := it.SeekToLast(); ok; ok = it.Prev() {
		if string(it.Key()) != fmt.Sprintf("k%05d", want) {
			t.Fatalf("backwards: %q, want k%05d", it.Key(), want)
		}
		want--
	}
	if it.Err() != nil || want != 999 {
		t.Fatalf("backward scan ended at %d: %v", want, it.Err())
	}
}

// Closing the DB under an iterator that still holds a batch: the batch's entries may be
// served, but the first call into resman reports ErrClosed, and nothing crashes.
func TestIteratorAfterItsDBClosed(t *testing.T) {
	db := openTemp(t)
	cf := db.Default()
	for i := 0; i < 300; i++ {
		must(cf.Put([]byte(fmt.Sprintf("k%03d", i)), []byte("v"), nil))
	}
	it, err := cf.NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	it.SeekToFirst()
	for i := 0; i < 10; i++ {
		if !it.Next() {
			t.Fatalf("entry %d: %v", i, it.Err())
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.Next() {
		n++
	}
	if !errors.Is(it.Err(), ErrClosed) || n > maxIterBatch {
		t.Fatalf("after the DB's close: %d more entries, then %v", n, it.Err())
	}
	if it.Seek([]byte("k")) || !errors.Is(it.Err(), ErrClosed) {
		t.Fatalf("seek after the DB's close: %v", it.Err())
	}
	// The DB owned its manager, whose destroy closed the iterator: ErrAlreadyClosed.
	if err := it.Close(); !errors.Is(err, ErrAlreadyClosed) {
		t.Fatalf("iterator close after its DB's: %v", err)
	}
}

// Refresh lets one iterator serve scan after scan, each seeing the writes before it; it
// leaves the iterator unpositioned, is refused at a snapshot, and reports a closed iterator.
func TestIteratorRefresh(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	cf := db.Default()
	must(cf.Put([]byte("a"), []byte("1"), nil))
	it, err := cf.NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	must(cf.Put([]byte("b"), []byte("2"), nil))
	if it.Seek([]byte("b")) {
		t.Fatal("an iterator sees a write made after its creation before a Refresh")
	}
	for i := 0; i < 5; i++ {
		key := []byte(fmt.Sprintf("c%d", i))
		must(cf.Put(key, []byte("v"), nil))
		must(it.Refresh())
		if it.Valid() {
			t.Fatal("valid right after Refresh")
		}
		if !it.Seek(key) || string(it.Key()) != string(key) {
			t.Fatalf("scan %d: the write before the Refresh is missing (%v)", i, it.Err())
		}
		n := 1
		for it.Prev() {
			n++
		}
		if want := 2 + i + 1; n != want || it.Err() != nil { // a, b, c0..ci
			t.Fatalf("scan %d: %d entries back from %s, want %d (%v)", i, n, key, want, it.Err())
		}
	}
	snap, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	atSnap, err := cf.NewIterator(&IterOptions{ReadOptions: ReadOptions{Snapshot: snap}})
	if err != nil {
		t.Fatal(err)
	}
	var re *Error
	if err := atSnap.Refresh(); !errors.As(err, &re) || re.Code != CodeInvalidArgument {
		t.Fatalf("Refresh at a snapshot: %v", err)
	}
	must(atSnap.Close())
	must(it.Close())
	if err := it.Refresh(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Refresh after Close: %v", err)
	}
}
