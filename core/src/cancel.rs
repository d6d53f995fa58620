//! Cancelling a long operation: a flag the caller sets, checked at loop
//! points that leave the repository consistent.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// The flag of an operation nobody can cancel.
pub static NEVER: AtomicBool = AtomicBool::new(false);

/// Err(Cancelled) once `cancel` is set: the check at a loop point.
pub fn check_cancel(cancel: &AtomicBool, what: &str) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled(format!("the {what} was cancelled")));
    }
    Ok(())
}
