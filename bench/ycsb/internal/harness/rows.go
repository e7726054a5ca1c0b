package harness

import (
	"errors"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/util"
)

// ErrNotFound is what every binding's Read returns for a missing record (go-ycsb counts it
// as a READ_ERROR).
var ErrNotFound = errors.New("record not found")

// Rows is the record layout the three bindings share, go-ycsb's own (its db/rocksdb binding):
// a record is one key, "table:key", whose value is the record's fields encoded by
// util.RowCodec (field number and bytes, varint-prefixed, one after the other; about
// 1.1 KB for the standard 10 fields of 100 bytes). A read decodes every field asked for
// into a map; an update reads the record, merges the new fields in and writes it back.
type Rows struct {
	codec *util.RowCodec
	bufs  *util.BufPool
}

// NewRows builds the codec for the properties' fieldcount.
func NewRows(p *properties.Properties) *Rows {
	return &Rows{codec: util.NewRowCodec(p), bufs: util.NewBufPool()}
}

// Key is the record's key in the store: "table:key".
func (r *Rows) Key(table, key string) []byte {
	b := make([]byte, 0, len(table)+1+len(key))
	return append(append(append(b, table...), ':'), key...)
}

// Decode returns the fields of row (all of them when fields is empty). The map's values
// point into row, which the caller must own.
func (r *Rows) Decode(row []byte, fields []string) (map[string][]byte, error) {
	return r.codec.Decode(row, fields)
}

// Encode encodes values into a pooled buffer; hand it back with Release once written.
func (r *Rows) Encode(values map[string][]byte) ([]byte, error) {
	return r.codec.Encode(r.bufs.Get(), values)
}

// Release returns a buffer from Encode to the pool.
func (r *Rows) Release(buf []byte) { r.bufs.Put(buf) }

// Merge overwrites row's fields with values (row may be nil: a record that was missing).
func Merge(row, values map[string][]byte) map[string][]byte {
	if row == nil {
		return values
	}
	for k, v := range values {
		row[k] = v
	}
	return row
}

// Clone copies b: a value whose memory the store owns (until a Free, Close or the next
// iterator move) has to be copied before Decode's map may point into it.
func Clone(b []byte) []byte { return append([]byte(nil), b...) }
