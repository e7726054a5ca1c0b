//! RocksDB's status messages as resman errors.

use crate::error::Error;

/// Maps a RocksDB status message ("IO error: ...", "Corruption: ...") to an error.
pub(crate) fn classify(msg: String) -> Error {
    if msg.starts_with("Failed to create RocksDB directory") {
        return Error::Io(msg);
    }
    if msg.starts_with("IO error") {
        if msg.contains("/LOCK") || msg.contains("lock hold") {
            return Error::Locked(format!(
                "{msg} (another process or another open DB holds this directory)"
            ));
        }
        return Error::Io(msg);
    }
    if msg.starts_with("Corruption") {
        return Error::Corruption(msg);
    }
    if msg.starts_with("Invalid argument") {
        return Error::InvalidArgument(format!("RocksDB: {msg}"));
    }
    Error::RocksDb(msg)
}

pub(super) fn rocks_error(e: rocksdb::Error) -> Error {
    classify(e.into_string())
}
