//! Faults of the machine (issue 7, item 6): a disk that fills up and a read-only file system,
//! on small tmpfs mounts the test makes. Needs root (or CAP_SYS_ADMIN) to mount; where the
//! machine does not allow it, each test says so and checks nothing. (Failing, hanging and
//! panicking callbacks are in tests/policy.rs; a directory locked by another process in
//! tests/rocks.rs.)

use resman::rocks::{self, CfSpec, DbOptions};
use resman::{rm_result, Config, Manager};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted for the test, unmounted when dropped (then its mount point, a temporary
/// directory, is removed).
struct Mount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    fn new(options: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipped: this machine does not let the test mount a tmpfs ({options})");
            return None;
        }
        Some(Mount {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn remount(&self, options: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(st.success(), "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn quick_config() -> Config {
    Config {
        max_retries: 1,
        retry_delay: Duration::from_millis(1),
        force_cleanup_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// Opens `path` in `mgr` as `name` with the column families `cfs` and 1 MiB memtables.
fn open(mgr: &Manager, name: &str, path: &Path, cfs: &[&str]) -> resman::Result<rocks::Opened> {
    open_with(mgr, name, path, cfs, 1 << 20)
}

fn open_with(
    mgr: &Manager,
    name: &str,
    path: &Path,
    cfs: &[&str],
    write_buffer_size: usize,
) -> resman::Result<rocks::Opened> {
    let specs: Vec<CfSpec> = cfs.iter().map(|n| CfSpec::new(n)).collect();
    let opts = DbOptions {
        write_buffer_size,
        ..DbOptions::default()
    };
    rocks::open(mgr.handle(), name, path, &specs, &opts)
}

#[test]
fn a_disk_that_fills_up_is_reported_and_loses_no_acknowledged_write() {
    let Some(disk) = Mount::new("size=4m") else {
        return;
    };
    let data = disk.path().join("db");
    let other_dir = tempfile::tempdir().unwrap();
    let mgr = Manager::with_config(quick_config()).unwrap();
    // A memtable larger than the disk: the write-ahead log is what fills it, and the put
    // that cannot be logged fails. (Had a flush hit the full disk first, RocksDB would stall
    // every write until space came back, waiting in its own recovery: puts block, not fail.)
    let db = open_with(&mgr, "full", &data, &["default"], 64 << 20).unwrap();
    let other = open(&mgr, "other", other_dir.path(), &["default"]).unwrap();
    let cf = db.column_families[0];
    let value = vec![0xabu8; 4096];
    let mut acked = 0u32;
    let err = loop {
        match rocks::put(cf, format!("k{acked:06}").as_bytes(), &value) {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 100_000, "a 4 MiB disk never filled up");
    };
    eprintln!("disk full after {acked} writes: {err}");
    assert!(
        matches!(err.code(), rm_result::RM_ERR_IO | rm_result::RM_ERR_ROCKSDB),
        "{err}"
    );
    assert!(err.to_string().contains("space"), "{err}");
    // The other DB is not disturbed.
    rocks::put(other.column_families[0], b"still", b"fine").unwrap();
    // Closing the full DB cannot flush: reported, and the DB is closed anyway.
    let close = mgr.close(db.db);
    eprintln!("close of the full DB: {close:?}");
    // Room again: every acknowledged write is there.
    disk.remount("size=64m");
    let db = open(&mgr, "full", &data, &["default"]).unwrap();
    let cf = db.column_families[0];
    for i in 0..acked {
        let got = rocks::get_vec(cf, format!("k{i:06}").as_bytes()).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(&value[..]),
            "acknowledged write {i} lost"
        );
    }
    mgr.close(db.db).unwrap();
    assert_eq!(
        rocks::get_vec(other.column_families[0], b"still")
            .unwrap()
            .as_deref(),
        Some(&b"fine"[..])
    );
}

#[test]
fn a_column_family_that_cannot_be_created_on_a_full_disk_leaves_the_db_as_it_was() {
    let Some(disk) = Mount::new("size=4m") else {
        return;
    };
    let data = disk.path().join("db");
    let mgr = Manager::with_config(quick_config()).unwrap();
    let db = open(&mgr, "db", &data, &["default"]).unwrap();
    rocks::put(db.column_families[0], b"kept", b"yes").unwrap();
    mgr.close(db.db).unwrap();
    // Fill what is left of the disk with something else.
    let filler = disk.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 8 << 20]);
    let err = open(&mgr, "db", &data, &["default", "new"]).unwrap_err();
    eprintln!("creating a column family on a full disk: {err}");
    assert!(
        matches!(err.code(), rm_result::RM_ERR_IO | rm_result::RM_ERR_ROCKSDB),
        "{err}"
    );
    let st = mgr.status().unwrap();
    assert!(
        st.resources.iter().all(|r| r.kind == "monitor"),
        "nothing of the failed open stays registered"
    );
    std::fs::remove_file(&filler).unwrap();
    let db = open(&mgr, "db", &data, &["default"]).unwrap();
    assert_eq!(
        rocks::get_vec(db.column_families[0], b"kept")
            .unwrap()
            .as_deref(),
        Some(&b"yes"[..])
    );
    mgr.close(db.db).unwrap();
}

#[test]
fn a_read_only_file_system_is_an_io_error_and_leaves_nothing_behind() {
    let Some(ro) = Mount::new("size=1m,ro") else {
        return;
    };
    let mgr = Manager::new().unwrap();
    let err = open(&mgr, "ro", &ro.path().join("db"), &["default"]).unwrap_err();
    eprintln!("opening on a read-only file system: {err}");
    assert_eq!(err.code(), rm_result::RM_ERR_IO, "{err}");
    assert!(
        err.to_string().to_lowercase().contains("read-only"),
        "{err}"
    );
    let st = mgr.status().unwrap();
    assert!(st.resources.iter().all(|r| r.kind == "monitor"));
}
