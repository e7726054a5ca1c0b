//! The RocksDB resources against the real RocksDB.

use resman::rocks::{self, CfHandle, DbOptions};
use resman::{rm_result, CloseMode, Error, Kind, Manager};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

const CHILD_ENV: &str = "RESMAN_TEST_CHILD_DB";

fn open(mgr: &Manager, name: &str, path: &Path, cfs: &[&str]) -> resman::Result<rocks::Opened> {
    let specs: Vec<rocks::CfSpec> = cfs.iter().map(|c| rocks::CfSpec::new(c)).collect();
    rocks::open(mgr.handle(), name, path, &specs, &DbOptions::default())
}

fn get(cf: CfHandle, key: &[u8]) -> Option<Vec<u8>> {
    rocks::get_vec(cf, key).unwrap()
}

/// The status's resources other than the manager's monitor.
fn user(st: &resman::monitor::Status) -> impl Iterator<Item = &resman::monitor::ResourceStatus> {
    st.resources.iter().filter(|r| r.kind != "monitor")
}

#[test]
fn put_get_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "main", dir.path(), &["default", "users"]).unwrap();
    let (default, users) = (db.column_families[0], db.column_families[1]);
    rocks::put(users, b"alice", b"admin").unwrap();
    rocks::put(default, b"alice", b"other cf").unwrap();
    assert_eq!(get(users, b"alice").as_deref(), Some(&b"admin"[..]));
    assert_eq!(get(default, b"alice").as_deref(), Some(&b"other cf"[..]));

    let mut buf = [0u8; 16];
    assert_eq!(rocks::get(users, b"alice", &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"admin");
    let mut small = [0u8; 2];
    assert_eq!(
        rocks::get(users, b"alice", &mut small),
        Err(Error::BufferTooSmall { needed: 5 })
    );
    assert_eq!(rocks::get(users, b"bob", &mut buf), Err(Error::NotFound));
    // Empty keys and values are ordinary.
    rocks::put(users, b"", b"").unwrap();
    assert_eq!(rocks::get(users, b"", &mut []).unwrap(), 0);

    rocks::delete(users, b"alice").unwrap();
    rocks::delete(users, b"never-there").unwrap();
    assert_eq!(get(users, b"alice"), None);

    let st = mgr.status().unwrap();
    let names: Vec<_> = user(&st).map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["main", "main/default", "main/users"]);
    assert_eq!(user(&st).next().unwrap().kind, "db");
    assert_eq!(
        user(&st).next().unwrap().dependents,
        vec!["main/default", "main/users"]
    );
    assert_eq!(user(&st).nth(1).unwrap().kind, "column_family");
}

#[test]
fn graceful_close_keeps_the_data_and_kills_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mgr = Manager::new().unwrap();
        let db = open(&mgr, "db", dir.path(), &["a", "b"]).unwrap();
        for i in 0..1000u32 {
            rocks::put(db.column_families[i as usize % 2], &i.to_be_bytes(), b"v").unwrap();
        }
        mgr.close(db.db).unwrap();
        // Column families went first, with their DB.
        for &cf in &db.column_families {
            assert!(matches!(rocks::put(cf, b"k", b"v"), Err(Error::Closed(_))));
            assert!(matches!(rocks::get_vec(cf, b"k"), Err(Error::Closed(_))));
            assert!(matches!(mgr.close(cf), Err(Error::AlreadyClosed(_))));
        }
        assert!(matches!(mgr.close(db.db), Err(Error::AlreadyClosed(_))));
        let st = mgr.status().unwrap();
        assert_eq!(user(&st).count(), 0);
        assert_eq!(st.totals.closed, 3);
        let order: Vec<_> = st.recently_closed.iter().map(|r| &*r.name).collect();
        assert_eq!(
            order.last(),
            Some(&"db"),
            "the DB closes after its column families"
        );
    }
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "db", dir.path(), &["a", "b"]).unwrap();
    for i in 0..1000u32 {
        assert!(get(db.column_families[i as usize % 2], &i.to_be_bytes()).is_some());
    }
}

#[test]
fn column_families_on_disk_but_not_asked_for_are_still_opened() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "db", dir.path(), &["a", "b", "c"]).unwrap();
    rocks::put(db.column_families[1], b"k", b"in b").unwrap();
    mgr.close(db.db).unwrap();
    let db = open(&mgr, "db", dir.path(), &["b"]).unwrap();
    assert_eq!(db.column_families.len(), 1);
    assert_eq!(
        get(db.column_families[0], b"k").as_deref(),
        Some(&b"in b"[..])
    );
}

#[test]
fn the_same_directory_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let a = Manager::new().unwrap();
    let b = Manager::new().unwrap();
    let db = open(&a, "db", dir.path(), &[]).unwrap();
    let err = open(&b, "db", dir.path(), &[]).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_LOCKED, "{err}");
    assert_eq!(b.status().unwrap().totals.registered, 1, "the monitor only");
    a.close(db.db).unwrap();
    open(&b, "db", dir.path(), &[]).unwrap();
}

/// Not a test on its own: the child process of `a_directory_locked_by_another_process...`.
#[test]
fn child_process_holds_the_db() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "held", Path::new(&path), &["default"]).unwrap();
    rocks::put(db.column_families[0], b"acknowledged", b"before the kill").unwrap();
    println!("READY");
    // Hold the DB until killed.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    std::process::exit(3);
}

#[test]
fn a_directory_locked_by_another_process_is_reported_and_freed_by_its_death() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_holds_the_db",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
        if line.trim_end().ends_with("READY") {
            break;
        }
    }
    let mgr = Manager::new().unwrap();
    let err = open(&mgr, "db", dir.path(), &["default"]).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_LOCKED, "{err}");
    assert_eq!(
        mgr.status().unwrap().totals.registered,
        1, // the monitor
        "nothing left registered"
    );

    child.kill().unwrap(); // SIGKILL: no close, no flush
    let status = child.wait().unwrap();
    assert!(!status.success());

    let db = open(&mgr, "db", dir.path(), &["default"]).unwrap();
    assert_eq!(
        get(db.column_families[0], b"acknowledged").as_deref(),
        Some(&b"before the kill"[..]),
        "an acknowledged write survives SIGKILL (WAL replay)"
    );
}

#[test]
fn a_failed_open_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let missing = dir.path().join("not-there");
    let no_create = DbOptions {
        create_if_missing: false,
        ..DbOptions::default()
    };
    let err = rocks::open(mgr.handle(), "db", &missing, &[], &no_create).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_INVALID_ARGUMENT, "{err}");

    // A taken name fails before the disk is touched.
    let other = mgr
        .register("taken", Kind::Foreign, Box::new(Nothing), &[])
        .unwrap();
    let err = open(&mgr, "taken", dir.path(), &[]).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_DUPLICATE_NAME);
    assert!(!dir.path().join("CURRENT").exists(), "no DB was created");
    // A column family name that collides: nothing of the DB stays registered.
    let _ = mgr.close(other);
    mgr.register("db/users", Kind::Foreign, Box::new(Nothing), &[])
        .unwrap();
    let err = open(&mgr, "db", dir.path(), &["users"]).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_DUPLICATE_NAME);

    for (cfs, what) in [(&["a", "a"][..], "listed twice"), (&[""][..], "1 to")] {
        let err = open(&mgr, "db", dir.path(), cfs).unwrap_err();
        assert_eq!(err.code(), rm_result::RM_ERR_INVALID_ARGUMENT);
        assert!(err.to_string().contains(what), "{err}");
    }
    let err = open(&mgr, "db", Path::new(""), &[]).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_INVALID_ARGUMENT);

    let st = mgr.status().unwrap();
    let names: Vec<_> = user(&st).map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["db/users"]);
    // And the directory is not left locked.
    let other = Manager::new().unwrap();
    open(&other, "db", dir.path(), &["users"]).unwrap();
}

#[test]
fn an_uncreatable_path_is_an_io_error() {
    // A path below a regular file cannot be created, whoever runs the test (root included).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let mgr = Manager::new().unwrap();
    let err = open(&mgr, "db", &file.join("db"), &[]).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_IO, "{err}");
    assert_eq!(
        mgr.status().unwrap().totals.registered,
        1,
        "the monitor only"
    );
}

struct Nothing;
impl resman::Resource for Nothing {
    fn close(&self, _: CloseMode) -> Result<(), String> {
        Ok(())
    }
    fn can_unregister(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[test]
fn db_and_column_families_cannot_be_unregistered() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "db", dir.path(), &["x"]).unwrap();
    assert_eq!(
        mgr.unregister(db.db).unwrap_err().code(),
        rm_result::RM_ERR_OWNED_RESOURCE
    );
    assert_eq!(
        mgr.unregister(db.column_families[0]).unwrap_err().code(),
        rm_result::RM_ERR_OWNED_RESOURCE
    );
    // A DB handle is not a column family.
    assert_eq!(
        rocks::put(CfHandle::from_raw(db.db.raw()), b"k", b"v")
            .unwrap_err()
            .code(),
        rm_result::RM_ERR_WRONG_KIND
    );
}

#[test]
fn closing_under_concurrent_readers_and_writers_never_crashes() {
    for (round, mode) in [CloseMode::Graceful, CloseMode::Forced, CloseMode::Graceful]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let mgr = Manager::new().unwrap();
        let db = open(&mgr, "db", dir.path(), &["default", "data"]).unwrap();
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads + 1));
        let started = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = Arc::clone(&barrier);
                let started = Arc::clone(&started);
                let cf = db.column_families[t % 2];
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut done = 0u64;
                    let mut buf = [0u8; 64];
                    loop {
                        let key = (done % 512).to_be_bytes();
                        let r = if t % 2 == 0 {
                            rocks::put(cf, &key, b"value")
                        } else {
                            rocks::get(cf, &key, &mut buf).map(|_| ())
                        };
                        match r {
                            Ok(()) | Err(Error::NotFound) => {
                                if done == 0 {
                                    started.fetch_add(1, Ordering::SeqCst);
                                }
                                done += 1
                            }
                            Err(Error::Closed(_)) => return done,
                            Err(e) => panic!("round {round}: unexpected {e}"),
                        }
                    }
                })
            })
            .collect();
        barrier.wait();
        // Close only once every worker is in its loop (synchronised on work done, not time).
        while started.load(Ordering::SeqCst) < threads {
            std::thread::yield_now();
        }
        mgr.close_with(db.db, mode, None).unwrap();
        let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(total >= threads as u64);
        // Closed for good, and the directory is free again.
        assert!(matches!(
            rocks::put(db.column_families[0], b"k", b"v"),
            Err(Error::Closed(_))
        ));
        let other = Manager::new().unwrap();
        open(&other, "db", dir.path(), &["default", "data"]).unwrap();
    }
}

/// `get_with` hands over any value with one lookup (pinned, no buffer to size), calls nothing
/// on a miss, and a panic in the caller's function releases the pin and the lease (the column
/// family closes normally afterwards).
#[test]
fn get_with_reads_any_size_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "main", dir.path(), &["default"]).unwrap();
    let cf = db.column_families[0];
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    rocks::put(cf, b"big", &big).unwrap();
    rocks::put(cf, b"empty", b"").unwrap();
    assert_eq!(
        rocks::get_with(cf, None, 0, b"big", |v| v == &big[..]),
        Ok(true)
    );
    assert_eq!(rocks::get_with(cf, None, 0, b"empty", <[u8]>::len), Ok(0));
    let mut called = false;
    assert_eq!(
        rocks::get_with(cf, None, 0, b"absent", |_| called = true),
        Err(Error::NotFound)
    );
    assert!(!called);
    assert_eq!(
        rocks::get_with(cf, None, 4, b"big", |_| ())
            .unwrap_err()
            .code(),
        rm_result::RM_ERR_INVALID_ARGUMENT
    );
    let panicked = std::panic::catch_unwind(|| {
        let _ = rocks::get_with(cf, None, 0, b"big", |_| panic!("caller's function"));
    });
    assert!(panicked.is_err());
    assert_eq!(
        rocks::get_vec(cf, b"big").unwrap().as_deref(),
        Some(&big[..])
    );
    mgr.close(db.db).unwrap();
    assert_eq!(
        rocks::get_with(cf, None, 0, b"big", |_| ())
            .unwrap_err()
            .code(),
        rm_result::RM_ERR_CLOSED
    );
}

/// `multi_get_with` offers every value that does not fit to the spill function (one lookup per
/// key); values it declines stay `TooSmall`, values that fit are packed as with `multi_get`.
#[test]
fn multi_get_with_spills_what_does_not_fit() {
    use resman::rocks::multiget::{multi_get_with, Lookup};
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "main", dir.path(), &["default"]).unwrap();
    let cf = db.column_families[0];
    rocks::put(cf, b"a", b"small").unwrap();
    rocks::put(cf, b"b", &[7u8; 3000]).unwrap();
    rocks::put(cf, b"c", &[9u8; 100]).unwrap();
    let keys: [&[u8]; 4] = [b"a", b"b", b"absent", b"c"];
    let mut out = [0u8; 16];
    let mut taken = Vec::new();
    let (lookups, needed) = multi_get_with(&[cf], None, 0, &keys, &mut out, |i, v| {
        taken.push((i, v.to_vec()));
        i == 1 // takes b's value, declines c's
    })
    .unwrap();
    assert_eq!(needed, 5 + 3000 + 100);
    assert_eq!(lookups[0], Lookup::Found { offset: 0, len: 5 });
    assert_eq!(&out[..5], b"small");
    assert_eq!(lookups[1], Lookup::Spilled { len: 3000 });
    assert_eq!(lookups[2], Lookup::NotFound);
    assert_eq!(lookups[3], Lookup::TooSmall { len: 100 });
    assert_eq!(taken.len(), 2);
    assert_eq!(taken[0], (1, vec![7u8; 3000]));
    assert_eq!(taken[1], (3, vec![9u8; 100]));
}
