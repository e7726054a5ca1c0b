//go:build grocksdb_clean_link

// Command ycsb-grocksdb runs YCSB on github.com/linxGnu/grocksdb, linked against the RocksDB
// of resman's bundled build (build tag grocksdb_clean_link and the CGO flags of run.sh): the
// go-ycsb DB "grocksdb", written with grocksdb's plain calls (DB.Get + Slice.Free, Put,
// Delete, a new iterator per scan). See bench/ycsb/README.md.
package main

import (
	"context"
	"errors"

	"github.com/linxGnu/grocksdb"
	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/ycsb"
	"github.com/resman-project/resman/bench/ycsb/internal/harness"
)

type creator struct{}

// Create opens the DB with resman's defaults set explicitly (as bench/go does): create if
// missing, 64 MiB write buffer, LZ4, no open-file limit, an LRU block cache of the size every
// engine gets, RocksDB's defaults otherwise (no bloom filter). Default read and write options:
// WAL on, no sync.
func (creator) Create(p *properties.Properties) (ycsb.DB, error) {
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	o.SetWriteBufferSize(p.MustGetUint64(harness.PropWriteBufferBytes))
	o.SetCompression(grocksdb.LZ4Compression)
	o.SetMaxOpenFiles(-1)
	t := grocksdb.NewDefaultBlockBasedTableOptions()
	defer t.Destroy()
	cache := grocksdb.NewLRUCache(p.MustGetUint64(harness.PropCacheBytes))
	t.SetBlockCache(cache)
	o.SetBlockBasedTableFactory(t)
	db, err := grocksdb.OpenDb(o, p.MustGetString(harness.PropDir))
	if err != nil {
		cache.Destroy()
		return nil, err
	}
	return &store{db: db, cache: cache, ro: grocksdb.NewDefaultReadOptions(),
		wo: grocksdb.NewDefaultWriteOptions(), rows: harness.NewRows(p)}, nil
}

type store struct {
	db    *grocksdb.DB
	cache *grocksdb.Cache
	ro    *grocksdb.ReadOptions
	wo    *grocksdb.WriteOptions
	rows  *harness.Rows
}

// Flush writes the memtable to a table file (after the load: grocksdb's Close does not).
func (s *store) Flush() error {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	return s.db.Flush(fo)
}

func (s *store) Close() error {
	s.db.Close()
	s.ro.Destroy()
	s.wo.Destroy()
	s.cache.Destroy()
	return nil
}

func (s *store) InitThread(ctx context.Context, _, _ int) context.Context { return ctx }

func (s *store) CleanupThread(context.Context) {}

func (s *store) Read(_ context.Context, table, key string, fields []string) (map[string][]byte, error) {
	v, err := s.db.Get(s.ro, s.rows.Key(table, key))
	if err != nil {
		return nil, err
	}
	defer v.Free()
	if !v.Exists() {
		return nil, harness.ErrNotFound
	}
	return s.rows.Decode(harness.Clone(v.Data()), fields)
}

func (s *store) Scan(_ context.Context, table, startKey string, count int, fields []string) ([]map[string][]byte, error) {
	it := s.db.NewIterator(s.ro)
	defer it.Close()
	res := make([]map[string][]byte, 0, count)
	for it.Seek(s.rows.Key(table, startKey)); it.Valid() && len(res) < count; it.Next() {
		v := it.Value()
		m, err := s.rows.Decode(harness.Clone(v.Data()), fields)
		v.Free()
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
	return s.db.Put(s.wo, s.rows.Key(table, key), buf)
}

func (s *store) Delete(_ context.Context, table, key string) error {
	return s.db.Delete(s.wo, s.rows.Key(table, key))
}

func main() {
	ycsb.RegisterDBCreator("grocksdb", creator{})
	harness.Main("grocksdb")
}
