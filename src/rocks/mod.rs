//! RocksDB as resources of the manager.
//!
//! A DB is one resource; each of its column families is another, registered as a dependent
//! of the DB. Snapshots and batches depend on their DB, iterators on their column family (and
//! snapshot). The DB resource owns the `rocksdb::DB` (and through it every native column
//! family handle); every other resource holds the DB's shared state plus its own native
//! object, and a pin (a lease) on what it depends on for as long as it lives.
//!
//! Why the `unsafe` here is sound, in one place:
//!
//! * The `DB` sits in an `UnsafeCell<Option<DB>>` inside `db::DbInner`. It is taken out
//!   (and dropped, which runs RocksDB's close) only by the DB resource's `close`, which the
//!   manager calls exactly once, when no lease on the DB entry is held and none can be taken
//!   any more (see `crate::lifecycle`).
//! * Every read of the cell happens under a lease: on the DB entry itself, or on an entry
//!   that (transitively) pins it: a column family, iterator, snapshot or batch, whose pin is
//!   held until that entry's own native close, which cannot run while the caller's lease is
//!   held.
//! * Therefore no reader can overlap the take, and the take happens-after every reader (the
//!   lease release is a Release store, the close claim an Acquire load).
//! * Native objects that need the open DB to be released (iterators, snapshots) are released
//!   by their resource's `close`, which runs before their pins are dropped; the only other
//!   release path is dropping a resource that was never registered, and its creator holds a
//!   lease on the DB (or column family) while that can happen.
//!
//! The C objects themselves are wrapped in `raw`.
//!
//! Modules: `options` (what a DB is opened with) and `open` (opening and registering it);
//! `db` (the DB and column-family resources and their leases) and `kv` (point reads and
//! writes); [`multiget`], [`batch`], [`snapshot`], [`iter`]; `dirlock` (one open per
//! directory); `status` (RocksDB's status messages as errors); `raw` (the C objects).

pub mod batch;
mod db;
mod dirlock;
pub mod iter;
mod kv;
pub mod multiget;
mod open;
mod options;
pub(crate) mod raw;
pub mod snapshot;
mod status;

pub use db::{memory, property_int, Memory};
pub use kv::{delete, delete_opt, get, get_opt, get_vec, get_with, put, put_opt};
pub use open::{open, Opened};
pub use options::{CfSpec, Compression, DbOptions, MAX_WRITE_BUFFER_SIZE, MIN_WRITE_BUFFER_SIZE};
pub use raw::Seek;

crate::typed_handle!(
    /// An open DB (`rm_db`): from [`open`]; closed by the manager's close.
    DbHandle
);
crate::typed_handle!(
    /// A column family of an open DB (`rm_cf`): from [`open`]; every point read and write
    /// names one.
    ///
    /// ```
    /// fn write(cf: resman::rocks::CfHandle) -> resman::Result<()> {
    ///     resman::rocks::put(cf, b"k", b"v")
    /// }
    /// ```
    ///
    /// Another kind of handle where a column family is expected does not compile (from C the
    /// same mistake is `RM_ERR_WRONG_KIND`):
    ///
    /// ```compile_fail
    /// fn write(batch: resman::rocks::BatchHandle) -> resman::Result<()> {
    ///     resman::rocks::put(batch, b"k", b"v")
    /// }
    /// ```
    CfHandle
);
crate::typed_handle!(
    /// An iterator over a column family (`rm_iter`): from [`iter::create`].
    IterHandle
);
crate::typed_handle!(
    /// A snapshot of a DB (`rm_snapshot`): from [`snapshot::create`].
    SnapshotHandle
);
crate::typed_handle!(
    /// A write batch of a DB (`rm_batch`): from [`batch::create`].
    BatchHandle
);
