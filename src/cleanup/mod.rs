//! Ordered closing: the order (dependents first), and the scheduler of a cleanup run.
//!
//! A run has two phases. In the graceful phase (until `cleanup_timeout`) a resource's close
//! begins only when every resource that depends on it has finished closing, so a dependent's
//! close may still use what it depends on; resources that do not depend on each other close
//! at the same time, each on a thread of [`crate::executor`], so a close that hangs holds up
//! only what depends on it. Whatever is unfinished when the graceful phase ends is forced:
//! every resource not begun yet begins at once (the lease protocol still makes each native
//! close wait for its dependents'), and the run waits `force_cleanup_timeout` more. What is
//! still unfinished then is reported as timed out, by name and state, and closes whenever
//! what holds it lets go. A forced run is the forced phase alone.

mod order;
mod run;
mod sched;
#[cfg(test)]
mod tests;

pub(crate) use order::{add_part_edges, dependents_first};
pub(crate) use run::{Bounds, Run};
pub(crate) use sched::{run_closes, Report};

use crate::error::Failure;
use crate::handle::Handle;
use std::sync::Arc;

/// What the scheduler needs from the manager, and all it knows of it. The manager sealed the
/// run's set when it chose it, so no dependent can join the run later: the set is the whole
/// job. Every close the run starts tells the run when it has finished, through
/// [`Run::finished`].
pub(crate) trait Closer {
    /// One resource of the run (an `Arc`: cheap to clone, and sent to the close pool).
    type Item: Clone + Send + 'static;
    fn handle(&self, item: &Self::Item) -> Handle;
    fn name<'a>(&'a self, item: &'a Self::Item) -> &'a str;
    /// Begins the close (the resource refuses new leases from now on): true if this run won
    /// it, false if someone else is closing it.
    fn begin(&self, item: &Self::Item) -> bool;
    /// Starts the close this run won: graceful (wait for operations until the graceful
    /// deadline, then close) or forced. `inline`: a quick close may run on this thread.
    /// Returns true when a forced close was left to what still holds the resource.
    fn start(&self, item: Self::Item, run: &Arc<Run>, forced: bool, inline: bool) -> bool;
    /// Starts those closes on another thread (the run has no time left to).
    fn start_later(&self, items: Vec<Self::Item>, run: &Arc<Run>, forced: bool);
    /// Reports the forced closes left to what still holds them (one event for the batch).
    fn deferred(&self, items: &[Self::Item]);
    /// Makes `run` hear when someone else's close of the item finishes.
    fn watch(&self, item: &Self::Item, run: &Arc<Run>);
    /// Someone else's close of the item is past its own graceful phase.
    fn past_graceful(&self, item: &Self::Item) -> bool;
    /// The failure of a finished close, if it failed.
    fn failure(&self, item: &Self::Item) -> Option<Failure>;
    /// The failure of a close unfinished at the final deadline; `waiting_on` names its
    /// unfinished dependents in the run.
    fn timeout(&self, item: &Self::Item, waiting_on: &[&str]) -> Failure;
}
