//! A DB directory is open at most once per process, whatever the spelling of its path.
//!
//! RocksDB's in-process lock is keyed by the path string: before resman claimed directories
//! by identity (device, inode), `dir/`, `dir/.`, `dir//`, a symlink, a relative path and
//! `p/../x/dir` each opened a second DB on files already open, and the two corrupted the
//! MANIFEST (every acknowledged write lost).

use resman::rocks::{self, CfSpec, DbOptions};
use resman::{CloseMode, Error, Manager};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Barrier};

/// The ways of naming one directory.
#[derive(Clone, Copy, Debug)]
enum Spelling {
    TrailingSlash,
    TrailingDot,
    DoubleSlash,
    Symlink,
    Relative,
    DotDot,
}

const ALL: [Spelling; 6] = [
    Spelling::TrailingSlash,
    Spelling::TrailingDot,
    Spelling::DoubleSlash,
    Spelling::Symlink,
    Spelling::Relative,
    Spelling::DotDot,
];

/// A temporary tree `<t>/x/dir` (the DB directory, its plain spelling) and `<t>/p`.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    // Canonical, so `..` below resolves as the kernel resolves it (/tmp may be a symlink).
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let dir = root.join("x").join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(root.join("p")).unwrap();
    Tree {
        _tmp: tmp,
        root,
        dir,
    }
}

/// `to` (absolute) as a path relative to the process's working directory. The tests run in
/// parallel threads of one process, so none changes the working directory.
fn relative_to_cwd(to: &Path) -> PathBuf {
    let cwd = std::fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
    let mut rel = PathBuf::new();
    for c in cwd.components() {
        if matches!(c, Component::Normal(_)) {
            rel.push("..");
        }
    }
    rel.push(to.strip_prefix("/").unwrap());
    assert!(rel.is_relative());
    rel
}

impl Tree {
    /// The DB directory spelled `s`.
    fn spelled(&self, s: Spelling) -> PathBuf {
        let plain = self.dir.to_str().unwrap();
        match s {
            Spelling::TrailingSlash => PathBuf::from(format!("{plain}/")),
            Spelling::TrailingDot => PathBuf::from(format!("{plain}/.")),
            Spelling::DoubleSlash => PathBuf::from(format!("{plain}//")),
            Spelling::Symlink => {
                let link = self.root.join("link");
                if !link.exists() {
                    std::os::unix::fs::symlink(&self.dir, &link).unwrap();
                }
                link
            }
            Spelling::Relative => relative_to_cwd(&self.dir),
            Spelling::DotDot => PathBuf::from(format!("{}/p/../x/dir", self.root.display())),
        }
    }
}

fn try_open(mgr: &Manager, name: &str, path: &Path) -> resman::Result<rocks::Opened> {
    rocks::open(
        mgr.handle(),
        name,
        path,
        &[CfSpec::new("default")],
        &DbOptions::default(),
    )
}

fn open(mgr: &Manager, name: &str, path: &Path) -> rocks::Opened {
    try_open(mgr, name, path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The open was refused as a second open of a directory held by `holder` in `mgr`.
fn assert_refused(r: resman::Result<rocks::Opened>, holder: &str, mgr: &Manager, what: &str) {
    match r {
        Err(Error::Locked(m)) => {
            assert!(m.contains(&format!("'{holder}'")), "{what}: {m}");
            assert!(
                m.contains(&format!("{:#x}", mgr.handle().raw())),
                "{what}: {m}"
            );
        }
        Err(e) => panic!("{what}: expected Locked, got {e:?}"),
        Ok(o) => panic!("{what}: a second open of the directory succeeded: {o:?}"),
    }
}

/// Nothing is registered but the manager's own monitor.
fn only_monitor(mgr: &Manager) -> bool {
    mgr.status()
        .unwrap()
        .resources
        .iter()
        .all(|r| r.kind == "monitor")
}

/// Held by one manager under the plain path, each spelling is refused to another; once the
/// holder closed, the spelling opens and reads what the holder wrote.
fn refused_then_opens(s: Spelling) {
    let t = tree();
    let spelled = t.spelled(s);
    let a = Manager::new().unwrap();
    let b = Manager::new().unwrap();
    let held = open(&a, "orders", &t.dir);
    rocks::put(held.column_families[0], b"k", b"v").unwrap();

    assert_refused(
        try_open(&b, "other", &spelled),
        "orders",
        &a,
        &format!("{s:?} ({})", spelled.display()),
    );
    assert!(
        only_monitor(&b),
        "{s:?}: the refused open left something registered"
    );
    // The same manager is refused too (under another name: the name is checked first).
    assert_refused(
        try_open(&a, "again", &spelled),
        "orders",
        &a,
        &format!("{s:?} same manager"),
    );

    a.close(held.db).unwrap();
    let second = open(&b, "other", &spelled);
    assert_eq!(
        rocks::get_vec(second.column_families[0], b"k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..]),
        "{s:?}"
    );
    // And now the plain path is the one refused.
    assert_refused(
        try_open(&a, "orders", &t.dir),
        "other",
        &b,
        &format!("{s:?} reversed"),
    );
    b.close(second.db).unwrap();
}

#[test]
fn trailing_slash_is_the_same_directory() {
    refused_then_opens(Spelling::TrailingSlash);
}

#[test]
fn trailing_dot_is_the_same_directory() {
    refused_then_opens(Spelling::TrailingDot);
}

#[test]
fn double_slash_is_the_same_directory() {
    refused_then_opens(Spelling::DoubleSlash);
}

#[test]
fn symlink_is_the_same_directory() {
    refused_then_opens(Spelling::Symlink);
}

#[test]
fn relative_path_is_the_same_directory() {
    refused_then_opens(Spelling::Relative);
}

#[test]
fn dot_dot_path_is_the_same_directory() {
    refused_then_opens(Spelling::DotDot);
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// The hostile tester's reproduction: a second open under another spelling, 20 synced keys
/// written through every handle that opened, both closed. The data must stay intact (before
/// the fix the DB no longer opened: Corruption, MANIFEST may be corrupted).
#[test]
fn acknowledged_writes_survive_a_second_open_under_another_spelling() {
    for s in ALL {
        let t = tree();
        let a = Manager::new().unwrap();
        let b = Manager::new().unwrap();
        let first = open(&a, "orders", &t.dir);
        let second = try_open(&b, "orders2", &t.spelled(s));
        let refused = matches!(second, Err(Error::Locked(_)));
        for i in 0..20 {
            rocks::put_opt(first.column_families[0], &key(i), b"first", 1).unwrap();
            if let Ok(o) = &second {
                // What the tester did when the open was (wrongly) accepted.
                rocks::put_opt(o.column_families[0], &key(100 + i), b"second", 1).unwrap();
            }
        }
        a.close(first.db).unwrap();
        if let Ok(o) = &second {
            let _ = b.close(o.db);
        }

        let c = Manager::new().unwrap();
        let reopened = try_open(&c, "orders", &t.spelled(ALL[(s as usize + 1) % ALL.len()]))
            .unwrap_or_else(|e| panic!("{s:?}: the DB no longer opens: {e}"));
        for i in 0..20 {
            assert_eq!(
                rocks::get_vec(reopened.column_families[0], &key(i))
                    .unwrap()
                    .as_deref(),
                Some(&b"first"[..]),
                "{s:?}: key {i}"
            );
        }
        c.close(reopened.db).unwrap();
        assert!(
            refused,
            "{s:?}: the second open was not refused: {second:?}"
        );
    }
}

/// Written under one spelling and closed, the data reads back under every other.
#[test]
fn data_written_under_one_spelling_reads_back_under_another() {
    let t = tree();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "w", &t.spelled(Spelling::Symlink));
    for i in 0..20 {
        rocks::put_opt(db.column_families[0], &key(i), b"v", 1).unwrap();
    }
    mgr.close(db.db).unwrap();
    for s in ALL {
        let db = open(&mgr, "r", &t.spelled(s));
        for i in 0..20 {
            assert_eq!(
                rocks::get_vec(db.column_families[0], &key(i))
                    .unwrap()
                    .as_deref(),
                Some(&b"v"[..]),
                "{s:?}: key {i}"
            );
        }
        // While it is open, the plain path is refused.
        assert_refused(
            try_open(&mgr, "plain", &t.dir),
            "r",
            &mgr,
            &format!("{s:?}"),
        );
        mgr.close(db.db).unwrap();
    }
}

/// An open that fails (a bad option before the disk is touched, a RocksDB refusal after the
/// directory was claimed) leaves the directory free: the next open succeeds, and that one
/// holds it.
#[test]
fn a_failed_open_does_not_keep_the_directory() {
    let t = tree();
    let mgr = Manager::new().unwrap();
    let other = Manager::new().unwrap();
    let spelled = t.spelled(Spelling::TrailingDot);

    let bad = DbOptions {
        write_buffer_size: 1,
        ..DbOptions::default()
    };
    let r = rocks::open(
        mgr.handle(),
        "bad",
        &spelled,
        &[CfSpec::new("default")],
        &bad,
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");

    // Create the DB, then ask for a column family it lacks without creating it: RocksDB
    // refuses after the directory was claimed.
    let db = open(&mgr, "create", &t.dir);
    mgr.close(db.db).unwrap();
    let no_create = DbOptions {
        create_missing_column_families: false,
        ..DbOptions::default()
    };
    let r = rocks::open(
        mgr.handle(),
        "cf",
        &spelled,
        &[CfSpec::new("default"), CfSpec::new("missing")],
        &no_create,
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    // error_if_exists: refused by RocksDB too.
    let exists = DbOptions {
        error_if_exists: true,
        ..DbOptions::default()
    };
    let r = rocks::open(
        mgr.handle(),
        "ex",
        &spelled,
        &[CfSpec::new("default")],
        &exists,
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert!(only_monitor(&mgr));

    let held = open(&other, "held", &t.spelled(Spelling::DoubleSlash));
    assert_refused(
        try_open(&mgr, "late", &spelled),
        "held",
        &other,
        "after failures",
    );
    other.close(held.db).unwrap();
    let again = open(&mgr, "again", &spelled);
    mgr.close(again.db).unwrap();
}

/// A missing directory with create_if_missing off is refused by RocksDB as before, and a path
/// that is a file is refused too; neither keeps anything.
#[test]
fn missing_directory_and_file_paths_keep_nothing() {
    let t = tree();
    let mgr = Manager::new().unwrap();
    let missing = t.root.join("nothing-here");
    let no_create = DbOptions {
        create_if_missing: false,
        ..DbOptions::default()
    };
    let r = rocks::open(
        mgr.handle(),
        "m",
        &missing,
        &[CfSpec::new("default")],
        &no_create,
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let db = open(&mgr, "m", &missing);
    assert_refused(
        try_open(
            &mgr,
            "m2",
            &PathBuf::from(format!("{}/", missing.display())),
        ),
        "m",
        &mgr,
        "created",
    );
    mgr.close(db.db).unwrap();

    let file = t.root.join("a-file");
    std::fs::write(&file, b"not a DB").unwrap();
    assert!(try_open(&mgr, "f", &file).is_err());
    assert!(try_open(&mgr, "f", &file).is_err());
    assert!(only_monitor(&mgr));
}

/// A forced close releases the directory when it returns.
#[test]
fn a_forced_close_releases_the_directory() {
    let t = tree();
    let a = Manager::new().unwrap();
    let b = Manager::new().unwrap();
    let first = open(&a, "forced", &t.dir);
    rocks::put(first.column_families[0], b"k", b"v").unwrap();
    a.close_with(first.db, CloseMode::Forced, None).unwrap();

    let second = open(&b, "after", &t.spelled(Spelling::Relative));
    assert_eq!(
        rocks::get_vec(second.column_families[0], b"k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
    assert_refused(
        try_open(&a, "forced", &t.spelled(Spelling::Symlink)),
        "after",
        &b,
        "held again",
    );
    b.close_with(second.db, CloseMode::Forced, None).unwrap();
    let third = open(&a, "third", &t.dir);
    a.close(third.db).unwrap();
}

/// Destroying the holder's manager releases the directory too.
#[test]
fn destroying_the_manager_releases_the_directory() {
    let t = tree();
    let a = Manager::new().unwrap();
    let _held = open(&a, "held", &t.dir);
    a.destroy().unwrap();
    let b = Manager::new().unwrap();
    let db = open(&b, "next", &t.spelled(Spelling::DotDot));
    b.close(db.db).unwrap();
}

/// Opens racing on every spelling at once: exactly one wins, every other is refused.
#[test]
fn racing_opens_under_every_spelling_admit_exactly_one() {
    let t = Arc::new(tree());
    let mut paths: Vec<PathBuf> = ALL.iter().map(|s| t.spelled(*s)).collect();
    paths.push(t.dir.clone());
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(paths.len()));
        let threads: Vec<_> = paths
            .iter()
            .cloned()
            .map(|p| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mgr = Manager::new().unwrap();
                    barrier.wait();
                    let r = try_open(&mgr, "racer", &p);
                    (mgr, r)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        let won: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: {:?}",
            results.iter().map(|r| &r.1).collect::<Vec<_>>()
        );
        for (_, r) in &results {
            if let Err(e) = r {
                assert!(matches!(e, Error::Locked(_)), "round {round}: {e:?}");
            }
        }
        let (mgr, r) = won[0];
        mgr.close(r.as_ref().unwrap().db).unwrap();
    }
}
