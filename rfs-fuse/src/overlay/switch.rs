//! [`SwitchReplicator`]: the replicator a mounted overlay keeps for its whole life, whose
//! destination the engine changes as the peer comes and goes, which can *freeze* writes
//! while a copy is completed, and *hold* operations (applied locally, not yet returned to the
//! application) until the engine knows the peer will not serve without them.

use super::replicate::{NoReplication, Pending, Replicator};
use crate::protocol::op::Op;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Forwards every operation to the current destination (at first [`NoReplication`]).
#[derive(Clone)]
pub struct SwitchReplicator {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

/// Sees every operation before it is sent, hence before it is applied locally (e.g. a
/// durable change journal).
pub type Observer = Arc<dyn Fn(&Op) + Send + Sync>;

struct State {
    target: Arc<dyn Replicator>,
    observer: Option<Observer>,
    frozen: bool,
    /// Every operation waits after its local apply, before returning to the application.
    holding: bool,
    /// Operations sent whose verdict has not been collected yet (hence perhaps not applied
    /// locally yet either: the overlay applies between `send` and the verdict).
    in_flight: usize,
}

impl Default for SwitchReplicator {
    fn default() -> Self {
        SwitchReplicator::new()
    }
}

impl std::fmt::Debug for SwitchReplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("SwitchReplicator")
            .field("frozen", &state.frozen)
            .field("in_flight", &state.in_flight)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state valid: a panicking holder cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the next change of the state.
    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl SwitchReplicator {
    pub fn new() -> SwitchReplicator {
        SwitchReplicator {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    target: Arc::new(NoReplication),
                    observer: None,
                    frozen: false,
                    holding: false,
                    in_flight: 0,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// From now on `observer` sees every operation before it leaves.
    pub fn observe(&self, observer: Observer) {
        self.inner.lock().observer = Some(observer);
    }

    /// Operations sent from now on go to `target`; those already sent keep their verdicts.
    pub fn set(&self, target: Arc<dyn Replicator>) {
        self.inner.lock().target = target;
    }

    /// Stop new operations (their callers wait) and wait until every operation already sent
    /// has been applied locally and judged, so that the tree underneath is still until the
    /// returned guard is dropped.
    pub fn freeze(&self) -> Frozen<'_> {
        let mut state = self.inner.lock();
        while state.frozen {
            state = self.inner.wait(state);
        }
        state.frozen = true;
        while state.in_flight > 0 {
            state = self.inner.wait(state);
        }
        Frozen { switch: self }
    }

    /// [`freeze`](Self::freeze), given up (`None`) if operations are or become held
    /// meanwhile: held operations wait for a decision that may need the caller's thread.
    pub fn freeze_unless_holding(&self) -> Option<Frozen<'_>> {
        let mut state = self.inner.lock();
        while state.frozen && !state.holding {
            state = self.inner.wait(state);
        }
        if state.holding {
            return None;
        }
        state.frozen = true;
        while state.in_flight > 0 && !state.holding {
            state = self.inner.wait(state);
        }
        if state.holding {
            state.frozen = false;
            self.inner.changed.notify_all();
            return None;
        }
        Some(Frozen { switch: self })
    }

    /// From now on, every operation waits after its local apply until
    /// [`release`](Self::release): the peer may serve without what is written now (it may
    /// have been lost to us while still able to take over). Safe to call from the link's
    /// broken callback: it takes no lock the waiters hold.
    pub fn hold_all(&self) {
        self.inner.lock().holding = true;
        self.inner.changed.notify_all();
    }

    /// Let held operations return, and stop holding.
    pub fn release(&self) {
        self.inner.lock().holding = false;
        self.inner.changed.notify_all();
    }

    /// Whether operations are held.
    pub fn holding(&self) -> bool {
        self.inner.lock().holding
    }

    /// Operations sent and not yet judged.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().in_flight
    }
}

/// Writes are held while this lives; see [`SwitchReplicator::freeze`].
#[must_use = "writes resume as soon as the guard is dropped"]
pub struct Frozen<'s> {
    switch: &'s SwitchReplicator,
}

impl Frozen<'_> {
    /// Change the destination before writes resume.
    pub fn set(&self, target: Arc<dyn Replicator>) {
        self.switch.set(target);
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.switch.inner.lock().frozen = false;
        self.switch.inner.changed.notify_all();
    }
}

/// Counts one operation in flight until its verdict is collected or dropped.
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            self.0.changed.notify_all();
        }
    }
}

impl Replicator for SwitchReplicator {
    fn send(&self, op: Op) -> Pending {
        let target = {
            let mut state = self.inner.lock();
            while state.frozen {
                state = self.inner.wait(state);
            }
            state.in_flight += 1;
            (Arc::clone(&state.target), state.observer.clone())
        };
        let (target, observer) = target;
        if let Some(observer) = observer {
            observer(&op);
        }
        let guard = InFlight(Arc::clone(&self.inner));
        let pending = target.send(op);
        Pending::new(move |local| {
            let verdict = pending.settle(local);
            let inner = &guard.0;
            let mut state = inner.lock();
            while state.holding {
                state = inner.wait(state);
            }
            drop(state);
            drop(guard);
            verdict
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::replicate::Recorder;
    use crate::protocol::op::RelPath;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    fn unlink(name: &str) -> Op {
        Op::Unlink {
            path: RelPath::new(name.as_bytes()).unwrap(),
        }
    }

    #[test]
    fn operations_follow_the_current_target() {
        let switch = SwitchReplicator::new();
        switch.send(unlink("before")).wait().unwrap();
        let recorder = Arc::new(Recorder::new());
        switch.set(recorder.clone());
        switch.send(unlink("after")).wait().unwrap();
        let ops = recorder.ops();
        assert_eq!(ops, vec![unlink("after")]);
        assert_eq!(switch.in_flight(), 0);
    }

    #[test]
    fn freeze_waits_for_operations_in_flight_and_holds_new_ones() {
        let switch = SwitchReplicator::new();
        let pending = switch.send(unlink("a"));
        assert_eq!(switch.in_flight(), 1);
        let frozen_done = Arc::new(AtomicBool::new(false));
        let (s2, done2) = (switch.clone(), frozen_done.clone());
        let freezer = std::thread::spawn(move || {
            let frozen = s2.freeze();
            done2.store(true, Ordering::SeqCst);
            let recorder = Arc::new(Recorder::new());
            frozen.set(recorder.clone());
            std::thread::sleep(Duration::from_millis(50));
            drop(frozen);
            recorder
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !frozen_done.load(Ordering::SeqCst),
            "the freeze must wait for the operation in flight"
        );
        pending.wait().unwrap();
        while !frozen_done.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // Sent during the freeze: waits for it to end, then goes to the new target.
        switch.send(unlink("b")).wait().unwrap();
        let recorder = freezer.join().unwrap();
        assert_eq!(recorder.ops(), vec![unlink("b")]);
    }

    #[test]
    fn a_freeze_unless_holding_gives_up_when_operations_are_held() {
        let switch = SwitchReplicator::new();
        let pending = switch.send(unlink("a"));
        let s2 = switch.clone();
        let freezer = std::thread::spawn(move || s2.freeze_unless_holding().is_some());
        std::thread::sleep(Duration::from_millis(50));
        switch.hold_all();
        assert!(
            !freezer.join().unwrap(),
            "given up while an operation waits to be held"
        );
        assert!(
            switch.freeze_unless_holding().is_none(),
            "held from the start"
        );
        switch.release();
        pending.wait().unwrap();
        assert!(switch.freeze_unless_holding().is_some());
        switch.send(unlink("b")).wait().unwrap();
    }

    struct Failing;

    impl Replicator for Failing {
        fn send(&self, _op: Op) -> Pending {
            Pending::failed(crate::overlay::ReplicationError::PeerLost("gone".into()))
        }
    }

    #[test]
    fn operations_wait_while_held_and_return_once_released() {
        let switch = SwitchReplicator::new();
        switch.set(Arc::new(Failing));
        switch.hold_all();
        let returned = Arc::new(AtomicBool::new(false));
        let (s2, r2) = (switch.clone(), returned.clone());
        let writer = std::thread::spawn(move || {
            let verdict = s2.send(unlink("a")).wait();
            r2.store(true, Ordering::SeqCst);
            verdict
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!returned.load(Ordering::SeqCst), "held until released");
        assert!(switch.holding());
        switch.release();
        assert!(
            writer.join().unwrap().is_err(),
            "the verdict itself is kept"
        );
        // Not holding: an operation returns at once.
        assert!(switch.send(unlink("b")).wait().is_err());
        switch.set(Arc::new(NoReplication));
        assert!(switch.send(unlink("c")).wait().is_ok());
    }

    #[test]
    fn a_dropped_verdict_still_counts_as_settled() {
        let switch = SwitchReplicator::new();
        drop(switch.send(unlink("a")));
        assert_eq!(switch.in_flight(), 0);
        drop(switch.freeze());
    }
}
