//! Manager settings: the `resource_management:` block, its defaults and its ranges.

use crate::error::{Error, Result};
use std::time::Duration;

/// Default bound of a graceful cleanup.
pub const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Manager settings. Start from [`Config::default`]; `manager::create` validates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bound of the graceful phase of a cleanup or close (waiting for in-flight operations and
    /// closing with every courtesy). Default 30 s; 1 ms to 24 h.
    pub cleanup_timeout: Duration,
    /// Bound of the forced phase that follows: what the graceful phase left unfinished is
    /// forced, and what has not finished this long after is reported as timed out. Also the
    /// bound of a forced cleanup that is given no timeout. Default 5 s; 1 ms to 1 h.
    pub force_cleanup_timeout: Duration,
    /// How often the monitor samples memory and looks for closes that are stuck. Default
    /// 10 s; 10 ms to 24 h.
    pub monitor_interval: Duration,
    /// Further attempts after a close fails. Default 3; 0 (no retry) to 100.
    pub max_retries: u32,
    /// Pause between close attempts. Default 1 s; 1 ms to 1 min.
    pub retry_delay: Duration,
}

/// Default bound of the forced phase.
pub const DEFAULT_FORCE_CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default monitor interval.
pub const DEFAULT_MONITOR_INTERVAL: Duration = Duration::from_secs(10);
/// Default retries after a failed close.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default pause between close attempts.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

impl Default for Config {
    fn default() -> Self {
        Config {
            cleanup_timeout: DEFAULT_CLEANUP_TIMEOUT,
            force_cleanup_timeout: DEFAULT_FORCE_CLEANUP_TIMEOUT,
            monitor_interval: DEFAULT_MONITOR_INTERVAL,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }
}

impl Config {
    /// Checks every setting against its documented range; the error names the setting, its
    /// value and the range.
    pub fn validate(&self) -> Result<()> {
        const MS: Duration = Duration::from_millis(1);
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        const DAY: Duration = Duration::from_secs(86400);
        let check = |name: &str, v: Duration, min: Duration, max: Duration| {
            if v < min || v > max {
                Err(Error::InvalidArgument(format!(
                    "{name} is {} ms; it must be from {} ms to {} ms",
                    v.as_millis(),
                    min.as_millis(),
                    max.as_millis()
                )))
            } else {
                Ok(())
            }
        };
        check("cleanup_timeout", self.cleanup_timeout, MS, DAY)?;
        check(
            "force_cleanup_timeout",
            self.force_cleanup_timeout,
            MS,
            HOUR,
        )?;
        check(
            "monitor_interval",
            self.monitor_interval,
            Duration::from_millis(10),
            DAY,
        )?;
        check("retry_delay", self.retry_delay, MS, MINUTE)?;
        if self.max_retries > MAX_RETRIES {
            return Err(Error::InvalidArgument(format!(
                "max_retries is {}; it must be from 0 to {MAX_RETRIES}",
                self.max_retries
            )));
        }
        Ok(())
    }
}

/// Largest accepted `max_retries`.
pub const MAX_RETRIES: u32 = 100;
