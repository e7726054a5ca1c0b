//! `rm_iter_read_next` / `rm_iter_read_prev` against a model: random data, random sequences of
//! seeks, single steps and batched reads with random buffer sizes and entry limits, on the real
//! RocksDB through the C ABI. Each batched read must return exactly the entries the model
//! says (packed as documented), stop where the buffer or the limit says, and leave the
//! iterator on the first entry it did not copy.

use proptest::prelude::*;
use resman::ffi::{
    rm_close, rm_db_open, rm_entry_len, rm_error, rm_iter_create, rm_iter_entry, rm_iter_next,
    rm_iter_prev, rm_iter_read_next, rm_iter_read_prev, rm_iter_seek, rm_iter_seek_for_prev,
    rm_iter_seek_to_first, rm_iter_seek_to_last, rm_manager_create, rm_manager_destroy, rm_put,
    RM_ERROR_MESSAGE_MAX,
};
use resman::rm_result;
use std::ffi::CString;
use std::ptr::{null, null_mut};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn new_error() -> rm_error {
    rm_error {
        code: rm_result::RM_OK,
        message: [0; RM_ERROR_MESSAGE_MAX],
    }
}

#[derive(Clone, Debug)]
enum Op {
    First,
    Last,
    Seek(Vec<u8>),
    SeekForPrev(Vec<u8>),
    Step {
        forward: bool,
    },
    Read {
        forward: bool,
        cap: usize,
        max: usize,
    },
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(b'a'..=b'e', 0..4)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::First),
        1 => Just(Op::Last),
        1 => key().prop_map(Op::Seek),
        1 => key().prop_map(Op::SeekForPrev),
        1 => any::<bool>().prop_map(|forward| Op::Step { forward }),
        6 => (any::<bool>(), 0usize..96, 0usize..12)
            .prop_map(|(forward, cap, max)| Op::Read { forward, cap, max }),
    ]
}

/// Keys of up to 3 letters from a-e, values of 0 to 30 bytes.
fn data() -> impl Strategy<Value = Entries> {
    prop::collection::btree_map(key(), prop::collection::vec(any::<u8>(), 0..30), 0..40)
        .prop_map(|m| m.into_iter().collect())
}

struct Db {
    m: u64,
    cf: u64,
    _dir: tempfile::TempDir,
}

impl Db {
    fn open(entries: &Entries) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let mut e = new_error();
        let mut m = 0;
        // SAFETY: valid out-pointers.
        assert_eq!(
            unsafe { rm_manager_create(null(), &mut m, &mut e) },
            rm_result::RM_OK
        );
        let path = CString::new(dir.path().to_str().unwrap()).unwrap();
        let name = CString::new("db").unwrap();
        let dflt = CString::new("default").unwrap();
        let cfn = [dflt.as_ptr()];
        let (mut db, mut cf) = (0, 0);
        // SAFETY: valid strings and out-pointers for the call.
        let rc = unsafe {
            rm_db_open(
                m,
                name.as_ptr(),
                path.as_ptr(),
                null(),
                cfn.as_ptr(),
                1,
                &mut db,
                &mut cf,
                &mut e,
            )
        };
        assert_eq!(rc, rm_result::RM_OK);
        for (k, v) in entries {
            // SAFETY: slices valid for the call.
            let rc = unsafe { rm_put(cf, k.as_ptr(), k.len(), v.as_ptr(), v.len(), &mut e) };
            assert_eq!(rc, rm_result::RM_OK);
        }
        Db { m, cf, _dir: dir }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: NULL error is allowed.
        unsafe { rm_manager_destroy(self.m, null_mut()) };
    }
}

/// The model: the sorted entries and the index the iterator is on (None: not on an entry).
struct Model<'a> {
    e: &'a Entries,
    at: Option<usize>,
}

impl Model<'_> {
    fn seek(&mut self, op: &Op) {
        let n = self.e.len();
        let lower = |k: &[u8]| self.e.partition_point(|(x, _)| x.as_slice() < k);
        let upper = |k: &[u8]| self.e.partition_point(|(x, _)| x.as_slice() <= k);
        self.at = match op {
            Op::First => (n > 0).then_some(0),
            Op::Last => n.checked_sub(1),
            Op::Seek(k) => Some(lower(k)).filter(|&i| i < n),
            Op::SeekForPrev(k) => upper(k).checked_sub(1),
            _ => unreachable!(),
        };
    }

    fn step(&mut self, forward: bool) {
        let i = self.at.expect("only stepped when on an entry");
        self.at = if forward {
            Some(i + 1).filter(|&j| j < self.e.len())
        } else {
            i.checked_sub(1)
        };
    }
}

/// The C iterator's current entry, or None.
fn current(it: u64) -> Option<(Vec<u8>, Vec<u8>)> {
    let (mut k, mut v) = ([0u8; 8], [0u8; 64]);
    let (mut kl, mut vl) = (0, 0);
    let mut e = new_error();
    // SAFETY: buffers and out-pointers valid for the call.
    let rc = unsafe {
        rm_iter_entry(
            it,
            k.as_mut_ptr(),
            k.len(),
            &mut kl,
            v.as_mut_ptr(),
            v.len(),
            &mut vl,
            &mut e,
        )
    };
    match rc {
        rm_result::RM_OK => Some((k[..kl].to_vec(), v[..vl].to_vec())),
        rm_result::RM_ERR_ITERATOR_NOT_VALID => None,
        other => panic!("rm_iter_entry: {other:?}"),
    }
}

fn run(entries: &Entries, ops: &[Op]) -> Result<(), TestCaseError> {
    let db = Db::open(entries);
    let mut e = new_error();
    let mut it = 0;
    // SAFETY: out-pointers valid; NULL bounds are no bounds.
    let rc = unsafe { rm_iter_create(db.cf, 0, 0, null(), 0, null(), 0, &mut it, &mut e) };
    prop_assert_eq!(rc, rm_result::RM_OK);
    let mut model = Model {
        e: entries,
        at: None,
    };
    let mut buf = vec![0u8; 128];
    let mut lens = vec![
        rm_entry_len {
            key_len: 0,
            value_len: 0
        };
        16
    ];
    for op in ops {
        let mut valid = false;
        match op {
            Op::First | Op::Last | Op::Seek(_) | Op::SeekForPrev(_) => {
                model.seek(op);
                // SAFETY: keys valid for the call; out-pointers valid.
                let rc = unsafe {
                    match op {
                        Op::First => rm_iter_seek_to_first(it, &mut valid, &mut e),
                        Op::Last => rm_iter_seek_to_last(it, &mut valid, &mut e),
                        Op::Seek(k) => rm_iter_seek(it, k.as_ptr(), k.len(), &mut valid, &mut e),
                        Op::SeekForPrev(k) => {
                            rm_iter_seek_for_prev(it, k.as_ptr(), k.len(), &mut valid, &mut e)
                        }
                        _ => unreachable!(),
                    }
                };
                prop_assert_eq!(rc, rm_result::RM_OK);
                prop_assert_eq!(valid, model.at.is_some());
            }
            Op::Step { forward } => {
                // SAFETY: out-pointers valid.
                let rc = unsafe {
                    if *forward {
                        rm_iter_next(it, &mut valid, &mut e)
                    } else {
                        rm_iter_prev(it, &mut valid, &mut e)
                    }
                };
                if model.at.is_none() {
                    prop_assert_eq!(rc, rm_result::RM_ERR_ITERATOR_NOT_VALID);
                } else {
                    prop_assert_eq!(rc, rm_result::RM_OK);
                    model.step(*forward);
                    prop_assert_eq!(valid, model.at.is_some());
                }
            }
            Op::Read { forward, cap, max } => {
                // The model's answer: entries from the current one while they fit.
                let mut want: Vec<usize> = Vec::new();
                let mut used = 0;
                let mut probe = model.at;
                let mut too_small = None;
                while let Some(i) = probe {
                    if want.len() == *max {
                        break;
                    }
                    let size = entries[i].0.len() + entries[i].1.len();
                    if used + size > *cap {
                        if want.is_empty() {
                            too_small = Some(i);
                        }
                        break;
                    }
                    used += size;
                    want.push(i);
                    let mut m = Model {
                        e: entries,
                        at: Some(i),
                    };
                    m.step(*forward);
                    probe = m.at;
                }
                let mut count = usize::MAX;
                valid = probe.is_none();
                // SAFETY: `buf` holds at least `cap` bytes and `lens` at least `max` entries;
                // the out-pointers are valid.
                let rc = unsafe {
                    let f = if *forward {
                        rm_iter_read_next
                    } else {
                        rm_iter_read_prev
                    };
                    f(
                        it,
                        buf.as_mut_ptr(),
                        *cap,
                        lens.as_mut_ptr(),
                        *max,
                        &mut count,
                        &mut valid,
                        &mut e,
                    )
                };
                if let Some(i) = too_small {
                    prop_assert_eq!(rc, rm_result::RM_ERR_BUFFER_TOO_SMALL);
                    prop_assert_eq!(count, 0);
                    prop_assert_eq!(lens[0].key_len, entries[i].0.len());
                    prop_assert_eq!(lens[0].value_len, entries[i].1.len());
                } else {
                    prop_assert_eq!(rc, rm_result::RM_OK);
                    prop_assert_eq!(count, want.len());
                    prop_assert_eq!(valid, probe.is_some());
                    let mut at = 0;
                    for (n, &i) in want.iter().enumerate() {
                        let (k, v) = &entries[i];
                        prop_assert_eq!(lens[n].key_len, k.len());
                        prop_assert_eq!(lens[n].value_len, v.len());
                        prop_assert_eq!(&buf[at..at + k.len()], k.as_slice());
                        at += k.len();
                        prop_assert_eq!(&buf[at..at + v.len()], v.as_slice());
                        at += v.len();
                    }
                    model.at = probe;
                }
            }
        }
        // Wherever the calls left it, the iterator is on the entry the model says.
        prop_assert_eq!(current(it), model.at.map(|i| entries[i].clone()));
    }
    // SAFETY: NULL error is allowed.
    prop_assert_eq!(unsafe { rm_close(db.m, it, null_mut()) }, rm_result::RM_OK);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn batched_reads_return_what_single_steps_would(
        entries in data(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(&entries, &ops)?;
    }
}
