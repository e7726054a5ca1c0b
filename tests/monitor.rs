//! The monitor thread: one per manager, a resource of it, gone after cleanup. Alone in its
//! test binary so that no other test's manager adds monitor threads while it counts them.

mod common;
use common::wait_until;
use resman::{Config, Manager};
use std::time::Duration;

/// Threads of this process named like the monitor.
fn monitor_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "resman-monitor")
        .count()
}

#[test]
fn the_monitor_samples_is_a_resource_and_is_gone_after_cleanup_and_destroy() {
    assert_eq!(monitor_threads(), 0);
    let mgr = Manager::with_config(Config {
        monitor_interval: Duration::from_millis(10),
        ..Config::default()
    })
    .unwrap();
    // A new thread names itself once it runs; an exited one leaves /proc once reaped: wait
    // for what /proc shows rather than assume either is instant.
    wait_until(|| monitor_threads() == 1);
    let st = mgr.status().unwrap();
    let monitor = st.resources.iter().find(|r| r.kind == "monitor").unwrap();
    assert_eq!(monitor.name, resman::monitor::MONITOR_NAME);
    assert_eq!(monitor.state, "active");
    // It samples at its interval, not just once.
    wait_until(|| mgr.status().unwrap().memory.samples >= 3);
    let st = mgr.status().unwrap();
    assert!(st.memory.registry_bytes > 0);
    assert!(st.memory.age_ms.is_some());
    assert_eq!(st.memory.reporting, 0, "no DB open");

    mgr.cleanup().unwrap();
    wait_until(|| monitor_threads() == 0); // stopped and joined by cleanup
    let st = mgr.status().unwrap();
    assert!(st.resources.is_empty());
    let closed = st
        .recently_closed
        .iter()
        .find(|r| r.kind == "monitor")
        .unwrap();
    assert_eq!(closed.outcome, "closed");

    // Destroy joins it too, and a second manager has its own.
    let a = Manager::new().unwrap();
    let b = Manager::new().unwrap();
    wait_until(|| monitor_threads() == 2);
    a.destroy().unwrap();
    wait_until(|| monitor_threads() == 1);
    drop(b);
    wait_until(|| monitor_threads() == 0);
    drop(mgr);
}
