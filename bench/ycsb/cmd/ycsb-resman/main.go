// Command ycsb-resman runs YCSB on the resman Go binding (bindings/go): the go-ycsb DB
// "resman", written with the binding's plain calls (ColumnFamily.Get, Put, Delete, a new
// iterator per scan). See bench/ycsb/README.md.
package main

import (
	"context"
	"errors"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/ycsb"
	"github.com/resman-project/resman/bench/ycsb/internal/harness"
	resman "github.com/resman-project/resman/bindings/go"
)

type creator struct{}

// Create opens the DB with resman's defaults (create if missing, 64 MiB write buffer, LZ4,
// no open-file limit), the block cache size of every engine; no bloom filter (resman's
// options have none). Reads and writes use the default options: WAL on, no sync.
func (creator) Create(p *properties.Properties) (ycsb.DB, error) {
	opts := resman.DefaultOptions()
	opts.CreateIfMissing = true
	opts.WriteBufferSize = p.MustGetUint64(harness.PropWriteBufferBytes)
	opts.BlockCacheSize = p.MustGetUint64(harness.PropCacheBytes)
	opts.Compression = resman.CompressionLZ4
	db, err := resman.Open(p.MustGetString(harness.PropDir), opts)
	if err != nil {
		return nil, err
	}
	return &store{db: db, cf: db.Default(), rows: harness.NewRows(p)}, nil
}

type store struct {
	db   *resman.DB
	cf   *resman.ColumnFamily
	rows *harness.Rows
}

// Close closes the DB gracefully (its memtables are flushed), and its manager.
func (s *store) Close() error { return s.db.Close() }

func (s *store) InitThread(ctx context.Context, _, _ int) context.Context { return ctx }

func (s *store) CleanupThread(context.Context) {}

func (s *store) Read(_ context.Context, table, key string, fields []string) (map[string][]byte, error) {
	v, err := s.cf.Get(s.rows.Key(table, key), nil)
	if errors.Is(err, resman.ErrNotFound) {
		return nil, harness.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.rows.Decode(v, fields) // v is the caller's: no copy
}

func (s *store) Scan(_ context.Context, table, startKey string, count int, fields []string) ([]map[string][]byte, error) {
	it, err := s.cf.NewIterator(nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	res := make([]map[string][]byte, 0, count)
	for ok := it.Seek(s.rows.Key(table, startKey)); ok && len(res) < count; ok = it.Next() {
		m, err := s.rows.Decode(harness.Clone(it.Value()), fields)
		if err != nil {
			return nil, err
		}
		res = append(res, m)
	}
	return res, it.Err()
}

func (s *store) Update(ctx context.Context, table, key string, values map[string][]byte) error {
	row, err := s.Read(ctx, table, key, nil)
	if err != nil && !errors.Is(err, harness.ErrNotFound) {
		return err
	}
	return s.Insert(ctx, table, key, harness.Merge(row, values))
}

func (s *store) Insert(_ context.Context, table, key string, values map[string][]byte) error {
	buf, err := s.rows.Encode(values)
	if err != nil {
		return err
	}
	defer s.rows.Release(buf)
	return s.cf.Put(s.rows.Key(table, key), buf, nil)
}

func (s *store) Delete(_ context.Context, table, key string) error {
	return s.cf.Delete(s.rows.Key(table, key), nil)
}

func main() {
	ycsb.RegisterDBCreator("resman", creator{})
	harness.Main("resman")
}
