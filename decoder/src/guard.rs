//! Panics inside dependencies, caught where they are called and turned into
//! positioned errors by the caller. mysql_common `unwrap()`s short reads and
//! trusts lengths (a corrupt table map's metadata, binary JSON, a
//! TRANSACTION_PAYLOAD's inner events): on malformed bytes it panics.
//!
//! The default panic hook would print the panic's message (and a backtrace
//! hint) before the caller's clear error; [`catch`] keeps it quiet for the
//! panics it catches, and only those: a thread-local flag tells the hook,
//! installed once, to pass every other panic on to the hook it replaced.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic inside it is `Err`, and prints nothing.
pub fn catch<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let outer = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_an_error_and_the_flag_is_reset() {
        let r: std::thread::Result<()> = catch(|| panic!("inside a dependency"));
        assert!(r.is_err());
        assert!(!CATCHING.with(Cell::get));
        assert_eq!(catch(|| 7).ok(), Some(7));
    }
}
