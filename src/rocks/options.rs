//! What a DB is opened with: [`DbOptions`] and [`CfSpec`] as resman's callers give them, their
//! validation, and the RocksDB options they become.

use crate::error::{Error, Result};
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options};

/// Compression of a column family's SST files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

impl Compression {
    fn rocks(self) -> DBCompressionType {
        match self {
            Compression::None => DBCompressionType::None,
            Compression::Lz4 => DBCompressionType::Lz4,
            Compression::Zstd => DBCompressionType::Zstd,
        }
    }
}

/// Smallest accepted memtable size.
pub const MIN_WRITE_BUFFER_SIZE: usize = 64 << 10;
/// Largest accepted memtable size (RocksDB's own ceiling is 64 GiB on 64-bit).
pub const MAX_WRITE_BUFFER_SIZE: usize = 64 << 30;

/// Options for [`open`](crate::rocks::open()).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbOptions {
    /// Create the DB if the directory holds none. Default true.
    pub create_if_missing: bool,
    /// Create requested column families that do not exist yet. Default true.
    pub create_missing_column_families: bool,
    /// Fail if a DB already exists at the path. Default false.
    pub error_if_exists: bool,
    /// Bytes per memtable (per column family). Default 64 MiB.
    pub write_buffer_size: usize,
    /// Table files kept open; -1 keeps all open. Default -1.
    pub max_open_files: i32,
    /// One LRU block cache shared by every column family, in bytes; 0 disables block caching.
    /// Default 32 MiB.
    pub block_cache_size: usize,
    /// Compression of every column family that does not set its own. Default LZ4.
    pub compression: Compression,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            create_if_missing: true,
            create_missing_column_families: true,
            error_if_exists: false,
            write_buffer_size: 64 << 20,
            max_open_files: -1,
            block_cache_size: 32 << 20,
            compression: Compression::Lz4,
        }
    }
}

impl DbOptions {
    pub(super) fn validate(&self) -> Result<()> {
        if !(MIN_WRITE_BUFFER_SIZE..=MAX_WRITE_BUFFER_SIZE).contains(&self.write_buffer_size) {
            return Err(Error::InvalidArgument(format!(
                "write_buffer_size {} is outside {MIN_WRITE_BUFFER_SIZE}..={MAX_WRITE_BUFFER_SIZE} bytes",
                self.write_buffer_size
            )));
        }
        if self.max_open_files == 0 || self.max_open_files < -1 {
            return Err(Error::InvalidArgument(format!(
                "max_open_files {} must be -1 (no limit) or positive",
                self.max_open_files
            )));
        }
        if self.block_cache_size > MAX_WRITE_BUFFER_SIZE * 16 {
            return Err(Error::InvalidArgument(format!(
                "block_cache_size {} is larger than 1 TiB",
                self.block_cache_size
            )));
        }
        Ok(())
    }
}

/// One column family asked for at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfSpec<'a> {
    pub name: &'a str,
    /// None: the DB's compression.
    pub compression: Option<Compression>,
}

impl<'a> CfSpec<'a> {
    pub fn new(name: &'a str) -> CfSpec<'a> {
        CfSpec {
            name,
            compression: None,
        }
    }
}

/// The RocksDB options a [`DbOptions`] becomes: the block cache shared by every column family
/// (kept for the memory figures), the table options that use it, and the DB-wide options.
pub(super) struct NativeOptions {
    pub(super) cache: Option<Cache>,
    table: BlockBasedOptions,
    write_buffer_size: usize,
    /// The DB-wide options, with the default compression.
    pub(super) db: Options,
}

impl NativeOptions {
    pub(super) fn new(opts: &DbOptions) -> NativeOptions {
        let cache =
            (opts.block_cache_size > 0).then(|| Cache::new_lru_cache(opts.block_cache_size));
        let mut table = BlockBasedOptions::default();
        match &cache {
            Some(c) => table.set_block_cache(c),
            None => table.disable_cache(),
        }
        let mut db = column_family_options(&table, opts.write_buffer_size, opts.compression);
        db.create_if_missing(opts.create_if_missing);
        db.create_missing_column_families(opts.create_missing_column_families);
        db.set_error_if_exists(opts.error_if_exists);
        db.set_max_open_files(opts.max_open_files);
        // avoid_flush_during_shutdown stays off (RocksDB's default): writes made without the WAL
        // are flushed when the DB closes instead of being dropped.
        NativeOptions {
            cache,
            table,
            write_buffer_size: opts.write_buffer_size,
            db,
        }
    }

    /// The options of one column family: the memtable size, `compression`, the shared cache.
    pub(super) fn column_family(&self, compression: Compression) -> Options {
        column_family_options(&self.table, self.write_buffer_size, compression)
    }
}

fn column_family_options(
    table: &BlockBasedOptions,
    write_buffer_size: usize,
    compression: Compression,
) -> Options {
    let mut o = Options::default();
    o.set_write_buffer_size(write_buffer_size);
    o.set_compression_type(compression.rocks());
    o.set_block_based_table_factory(table);
    o
}
