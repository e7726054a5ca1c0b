// Command ycsb-pebble runs YCSB on github.com/cockroachdb/pebble/v2, the pure-Go LSM: the
// go-ycsb DB "pebble", written with Pebble's plain calls (DB.Get + closer, Set, Delete, a new
// iterator per scan). See bench/ycsb/README.md.
package main

import (
	"context"
	"errors"

	"github.com/cockroachdb/pebble/v2"
	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/ycsb"
	"github.com/resman-project/resman/bench/ycsb/internal/harness"
)

type creator struct{}

// Create opens the DB with the memtable size and block cache size of the RocksDB sides and
// Pebble's defaults otherwise: Snappy compression (Pebble has no LZ4), no bloom filter, the
// WAL on. Writes use pebble.NoSync.
func (creator) Create(p *properties.Properties) (ycsb.DB, error) {
	cache := pebble.NewCache(p.MustGetInt64(harness.PropCacheBytes))
	defer cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(p.MustGetString(harness.PropDir), &pebble.Options{
		Cache:        cache,
		MemTableSize: p.MustGetUint64(harness.PropWriteBufferBytes),
		Logger:       quietLogger{},
	})
	if err != nil {
		return nil, err
	}
	return &store{db: db, rows: harness.NewRows(p)}, nil
}

// quietLogger drops Pebble's informational messages (WAL replay on every open); errors and
// fatal errors go to Pebble's default logger.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }

func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

type store struct {
	db   *pebble.DB
	rows *harness.Rows
}

// Flush writes the memtable to table files (after the load: Pebble's Close does not).
func (s *store) Flush() error { return s.db.Flush() }

func (s *store) Close() error { return s.db.Close() }

func (s *store) InitThread(ctx context.Context, _, _ int) context.Context { return ctx }

func (s *store) CleanupThread(context.Context) {}

func (s *store) Read(_ context.Context, table, key string, fields []string) (map[string][]byte, error) {
	v, closer, err := s.db.Get(s.rows.Key(table, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, harness.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return s.rows.Decode(harness.Clone(v), fields)
}

func (s *store) Scan(_ context.Context, table, startKey string, count int, fields []string) ([]map[string][]byte, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	res := make([]map[string][]byte, 0, count)
	for ok := it.SeekGE(s.rows.Key(table, startKey)); ok && len(res) < count; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		m, err := s.rows.Decode(harness.Clone(v), fields)
		if err != nil {
			return nil, err
		}
		res = append(res, m)
	}
	return res, it.Error()
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
	return s.db.Set(s.rows.Key(table, key), buf, pebble.NoSync)
}

func (s *store) Delete(_ context.Context, table, key string) error {
	return s.db.Delete(s.rows.Key(table, key), pebble.NoSync)
}

func main() {
	ycsb.RegisterDBCreator("pebble", creator{})
	harness.Main("pebble")
}
