use super::*;
use crate::farm::membership::ViewId;
use crate::farm::table::{Member, diff};

const N: usize = 256;

fn view(names: &[&str]) -> View {
    View {
        members: names.iter().map(|n| n.to_string()).collect(),
        id: ViewId(names.len() as u64),
    }
}

fn hosts() -> Vec<Member> {
    ["a", "b", "n"].iter().map(|n| Member::new(*n, 1)).collect()
}

fn table(names: &[&str]) -> BucketTable {
    BucketTable::for_view(&hosts(), names.iter().copied(), N).unwrap()
}

/// The handovers from `old` to `new`, classified as the membership does.
fn moves(old: &BucketTable, new: &BucketTable, new_view: &View) -> Vec<Handover> {
    diff(old, new)
        .unwrap()
        .moves
        .into_iter()
        .map(|m| Handover {
            kind: match &m.from {
                Some(f) if new_view.members.contains(f) => HandoverKind::Drain,
                _ => HandoverKind::TakeWhole,
            },
            bucket: m.bucket,
            from: m.from,
            to: m.to,
        })
        .collect()
}

fn count(d: &Drains, s: BucketState) -> usize {
    d.states().iter().filter(|x| **x == s).count()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_dead_owners_buckets_are_taken_whole() {
    let (full, without_n) = (table(&["a", "b", "n"]), table(&["a", "b"]));
    let mut a = Drains::new("a");
    a.install(secs(0), &view(&["a", "b", "n"]), &full, &[]);
    let owned = count(&a, BucketState::Owned);
    let v = view(&["a", "b"]);
    let line = a.install(secs(1), &v, &without_n, &moves(&full, &without_n, &v));
    assert_eq!(count(&a, BucketState::Owned), without_n.load("a").owned);
    assert!(count(&a, BucketState::Owned) > owned);
    assert_eq!(
        count(&a, BucketState::Draining) + count(&a, BucketState::NewOnly),
        0
    );
    assert!(line.contains("owned, 0 draining, 0 new-only"), "{line}");
    assert!(!a.draining());
}

#[test]
fn buckets_given_to_a_live_node_drain_until_their_connections_end() {
    let (before, after) = (table(&["a", "b"]), table(&["a", "b", "n"]));
    let v = view(&["a", "b", "n"]);
    let m = moves(&before, &after, &v);
    let given = m.iter().filter(|h| h.from.as_deref() == Some("a")).count();
    assert!(given > 0);

    let mut a = Drains::new("a");
    a.install(secs(0), &view(&["a", "b"]), &before, &[]);
    a.install(secs(10), &v, &after, &m);
    assert_eq!(count(&a, BucketState::Draining), given);
    assert!(a.draining());
    let draining: Vec<usize> = (0..N)
        .filter(|&b| a.states()[b] == BucketState::Draining)
        .collect();

    // Connections still open in one bucket: only the others are released.
    let mut open = vec![0u32; N];
    open[draining[0]] = 2;
    let line = a.poll(secs(11), Some(&open)).unwrap();
    assert!(
        line.starts_with(&format!("{} draining bucket(s) released", given - 1)),
        "{line}"
    );
    assert_eq!(count(&a, BucketState::Draining), 1);
    // Not counted: nothing changes.
    assert_eq!(a.poll(secs(12), None), None);
    assert_eq!(a.poll(secs(12), Some(&open)), None);
    // The limit cuts what is left.
    let line = a.poll(secs(10) + DRAIN_MAX, Some(&open)).unwrap();
    assert!(line.contains("(2 connection(s) still open here"), "{line}");
    assert_eq!(count(&a, BucketState::Draining), 0);
    assert_eq!(count(&a, BucketState::Owned), after.load("a").owned);
    assert!(!a.draining());
}

#[test]
fn buckets_taken_from_a_live_node_accept_only_new_connections_for_a_while() {
    let (before, after) = (table(&["a", "b"]), table(&["a", "b", "n"]));
    let v = view(&["a", "b", "n"]);
    let m = moves(&before, &after, &v);
    let mut n = Drains::new("n");
    n.install(secs(0), &v, &after, &m);
    assert_eq!(count(&n, BucketState::NewOnly), after.load("n").owned);
    assert!(!n.draining());
    assert_eq!(n.poll(secs(5), None), None);
    let line = n.poll(DRAIN_MAX, None).unwrap();
    assert!(line.contains("now accept every connection"), "{line}");
    assert_eq!(count(&n, BucketState::Owned), after.load("n").owned);
}

#[test]
fn a_new_only_bucket_is_owned_at_once_when_its_old_owner_leaves() {
    let (before, after) = (table(&["a", "b"]), table(&["a", "b", "n"]));
    let v = view(&["a", "b", "n"]);
    let mut n = Drains::new("n");
    n.install(secs(0), &v, &after, &moves(&before, &after, &v));
    // a dies: the table without a; n keeps the buckets it took from a, now whole.
    let without_a = table(&["b", "n"]);
    let v2 = view(&["b", "n"]);
    n.install(secs(3), &v2, &without_a, &moves(&after, &without_a, &v2));
    let from_b = moves(&before, &after, &v)
        .iter()
        .filter(|h| h.from.as_deref() == Some("b") && without_a.owner(h.bucket) == Some("n"))
        .count();
    assert_eq!(count(&n, BucketState::NewOnly), from_b);
    assert_eq!(
        count(&n, BucketState::Owned) + from_b,
        without_a.load("n").owned
    );
}

#[test]
fn withdrawing_accepts_nothing() {
    let t = table(&["a", "b"]);
    let mut a = Drains::new("a");
    a.install(secs(0), &view(&["a", "b"]), &t, &[]);
    a.withdraw();
    assert_eq!(count(&a, BucketState::NotOwned), N);
    assert!(!a.draining());
}
