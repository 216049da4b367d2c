//! When a copy made while the application writes stops catching up and freezes writes for
//! its last pass: a pure rule, so that it can be tested without a file system.

/// Few enough changed paths to copy them with writes waiting.
pub const FINAL_PASS_PATHS: usize = 64;
/// Catch-up passes after the first copy before the last one is made anyway: an application
/// changing many files all the time must not postpone the end forever.
pub const MAX_PASSES: usize = 4;

/// Whether to make one more catch-up pass (writes going on) rather than the last one (writes
/// waiting), after `passes` catch-up passes, with `changed` paths left to copy.
pub fn another_pass(passes: usize, changed: usize) -> bool {
    passes < MAX_PASSES && changed > FINAL_PASS_PATHS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_wait_only_for_a_small_last_pass_or_after_the_last_allowed_pass() {
        assert!(
            !another_pass(0, 0),
            "nothing changed: the last pass at once"
        );
        assert!(!another_pass(0, FINAL_PASS_PATHS), "few enough: last pass");
        assert!(
            another_pass(0, FINAL_PASS_PATHS + 1),
            "too many: catch up first"
        );
        assert!(another_pass(MAX_PASSES - 1, 10_000));
        assert!(
            !another_pass(MAX_PASSES, 10_000),
            "a writer that never slows down still gets its copy"
        );
    }
}
