//! RocksDB as resources of the manager.
//!
//! A DB is one resource; each of its column families is another, registered as a dependent
//! of the DB. The DB resource owns the `rocksdb::DB` (and through it every native column
//! family handle); a column-family resource holds the DB's shared state plus the native
//! handle of its family, and a pin (a lease) on the DB entry for as long as it lives.
//!
//! Why the `unsafe` here is sound, in one place:
//!
//! * The `DB` sits in an `UnsafeCell<Option<DB>>` inside [`db::DbInner`]. It is taken out
//!   (and dropped, which runs RocksDB's close) only by the DB resource's `close`, which the
//!   manager calls exactly once, when no lease on the DB entry is held and none can be taken
//!   any more (see `crate::lifecycle`).
//! * Every read of the cell happens under a lease: on the DB entry itself, or on a column
//!   family (or later iterator, snapshot, batch) entry, whose pin on the DB entry is held until
//!   that entry's own native close, which cannot run while the caller's lease is held.
//! * Therefore no reader can overlap the take, and the take happens-after every reader (the
//!   lease release is a Release store, the close claim an Acquire load).

mod db;

pub use db::{delete, get, get_vec, open, put, DbOptions, Opened};
