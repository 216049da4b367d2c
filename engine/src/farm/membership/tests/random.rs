//! Randomized schedules: 3–5 nodes with random powers (some 0), crashes and restarts,
//! partitions, one-way cuts, lossy and reordering links, silent networks, checker failures
//! and administrator stops. The
//! simulation checks every installation as it happens; once the network heals and the
//! failures end, every live node must install the same table, for the view of exactly the
//! started healthy nodes. Seeded and replayable: `HAKIT_SEED=n` runs one seed,
//! `HAKIT_HEAVY=1` runs many more and longer schedules.

use super::sim::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

fn run_schedule(seed: u64, chaos: Duration) {
    let mut shape = StdRng::seed_from_u64(seed);
    let nodes = shape.random_range(3..=5usize);
    let powers: Vec<u32> = (0..nodes)
        .map(|_| {
            if shape.random_bool(0.2) {
                0
            } else {
                shape.random_range(1..=3)
            }
        })
        .collect();
    let networks = shape.random_range(1..=2);
    let mut w = World::new(seed, &powers, networks);
    w.loss = 0.05;
    let mut down_until: Vec<Option<Duration>> = vec![None; nodes];
    let mut next_start = Duration::ZERO;
    for i in 0..nodes {
        next_start += Duration::from_millis(w.rng.random_range(0..700));
        w.run_for(next_start.saturating_sub(w.now));
        w.start(i);
    }
    let end = w.now + chaos;
    let mut next_event = w.now + Duration::from_millis(w.rng.random_range(200..2000));
    while w.now < end {
        w.tick();
        for (i, until) in down_until.iter_mut().enumerate() {
            if until.is_some_and(|t| w.now >= t) {
                *until = None;
                w.boot(i);
            }
        }
        if w.now < next_event {
            continue;
        }
        next_event = w.now + Duration::from_millis(w.rng.random_range(100..3000));
        let i = w.rng.random_range(0..nodes);
        match w.rng.random_range(0..12) {
            0 | 1 if w.running(i) => {
                w.crash(i);
                down_until[i] = Some(w.now + Duration::from_millis(w.rng.random_range(100..5000)));
            }
            2 => {
                // A random split into two sides, or healed.
                if w.side.iter().all(|&s| s == 0) {
                    for s in w.side.iter_mut() {
                        *s = u8::from(w.rng.random_bool(0.5));
                    }
                } else {
                    w.side.iter_mut().for_each(|s| *s = 0);
                }
            }
            3 => {
                let j = w.rng.random_range(0..nodes);
                if i != j && !w.cut.remove(&(i, j)) {
                    w.cut.insert((i, j));
                }
            }
            4 => w.loss = [0.0, 0.05, 0.2, 0.4][w.rng.random_range(0..4)],
            9 => w.max_delay = ms([5, 50, 250][w.rng.random_range(0..3)]),
            10 => {
                let net = w.rng.random_range(0..w.net_down.len());
                w.net_down[net] = !w.net_down[net];
            }
            5 | 6 if w.nodes[i].checker_failing => w.recover_checker(i),
            5 | 6 => w.fail_checker(i),
            7 if w.nodes[i].started => w.stop(i),
            7 | 8 => w.start(i),
            _ => {}
        }
    }
    // The network stabilises: links heal, the crashed come back, failures end. One node may
    // stay stopped: it must enforce nothing.
    w.heal();
    w.loss = 0.1;
    w.max_delay = ms(5);
    for i in 0..nodes {
        if !w.running(i) {
            w.boot(i);
        }
        if w.nodes[i].checker_failing {
            w.recover_checker(i);
        }
        if !w.nodes[i].started && w.rng.random_bool(0.7) {
            w.start(i);
        }
    }
    w.run_until(
        "the farm to converge",
        Duration::from_secs(8),
        World::converged,
    );
    // Stays converged.
    w.run_for(Duration::from_secs(3));
    assert!(w.converged(), "seed {seed}: diverged again\n{}", w.dump());
    let tables: Vec<_> = w
        .nodes
        .iter()
        .filter_map(|n| n.enforced.as_ref().map(|(_, t)| t))
        .collect();
    assert!(tables.windows(2).all(|p| p[0] == p[1]), "seed {seed}");
    for (i, &power) in powers.iter().enumerate() {
        if power == 0
            && let Some(t) = tables.first()
        {
            assert_eq!(t.load(&w.nodes[i].name).owned, 0, "seed {seed}");
        }
    }
}

#[test]
fn farm_random_schedules_converge_on_one_table() {
    let heavy = std::env::var_os("HAKIT_HEAVY").is_some();
    let (seeds, chaos) = match std::env::var("HAKIT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => (
            seed..seed + 1,
            Duration::from_secs(if heavy { 120 } else { 30 }),
        ),
        None if heavy => (0..500, Duration::from_secs(120)),
        None => (0..30, Duration::from_secs(30)),
    };
    for seed in seeds {
        run_schedule(seed, chaos);
    }
}
