//! The machine fed by hand: states, adverts, defensive handling of odd heartbeats, config.

use super::super::*;
use crate::farm::table::{Member, TableError};
use std::time::Duration;

fn config(me: &str) -> FarmConfig {
    FarmConfig::with_defaults(
        me,
        vec![Member::new("node1", 1), Member::new("node2", 1)],
        vec!["default".to_string()],
    )
}

fn machine(me: &str) -> Membership {
    match Membership::new(config(me), 1, Duration::ZERO) {
        Ok((m, _)) => m,
        Err(e) => panic!("{e}"),
    }
}

fn logs(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(l) => Some(l.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn farm_states_and_exit_codes() {
    let mut m = machine("node1");
    assert_eq!(m.state(), FarmState::Stop);
    assert_eq!(m.state().exit_code(), 0);
    m.handle(Duration::ZERO, Input::Start);
    assert_eq!(m.state(), FarmState::Wait);
    assert_eq!(m.state().exit_code(), 1);
    // Alone: installs after listening slost_count pulses.
    m.handle(Duration::from_millis(990), Input::Tick);
    assert_eq!(m.state(), FarmState::Wait);
    let actions = m.handle(Duration::from_millis(1000), Input::Tick);
    assert!(
        matches!(actions.last(), Some(Action::InstallTable { .. })),
        "{actions:?}"
    );
    assert_eq!(m.state(), FarmState::Up);
    assert_eq!(m.state().exit_code(), 2);
    assert_eq!(
        m.status(Duration::from_millis(1000)).loads[0].1.to_string(),
        "256/256"
    );
    let actions = m.handle(Duration::from_millis(1100), Input::Stop);
    assert!(actions.contains(&Action::Withdraw));
    assert_eq!(m.state(), FarmState::Stop);
    assert_eq!(
        logs(&m.handle(Duration::from_millis(1200), Input::Stop)),
        ["stop: already stopped"]
    );
}

#[test]
fn farm_adverts_are_numbered_and_stale_ones_do_not_replace_newer() {
    let mut node2 = machine("node2");
    node2.handle(Duration::ZERO, Input::Start);
    let first = node2.advert();
    let second = node2.advert();
    assert_eq!((first.seq, second.seq), (1, 2));
    assert!(first.healthy && first.hears.is_empty());
    let mut node1 = machine("node1");
    let hb = |advert: Advert| Input::Heartbeat {
        net: 0,
        from: "node2".to_string(),
        advert,
    };
    let mut newer = second.clone();
    newer.healthy = false;
    node1.handle(Duration::ZERO, hb(newer));
    node1.handle(Duration::ZERO, hb(first));
    let status = node1.status(Duration::ZERO);
    assert_eq!(
        status.peers[0].healthy,
        Some(false),
        "the stale advert was ignored"
    );
}

#[test]
fn farm_odd_heartbeats_are_ignored_and_reported_once() {
    let mut m = machine("node1");
    let advert = machine("node2").advert();
    let mut from = |net: usize, sender: &str| {
        let input = Input::Heartbeat {
            net,
            from: sender.to_string(),
            advert: advert.clone(),
        };
        logs(&m.handle(Duration::ZERO, input))
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        from(0, "intruder"),
        ["ignoring heartbeats from intruder: not a host of this farm group"]
    );
    assert!(from(0, "intruder").is_empty(), "reported once");
    assert!(from(0, "node1")[0].contains("two nodes with the same name?"));
    assert_eq!(
        from(7, "node2"),
        ["ignoring heartbeats on unknown network #7"]
    );
    assert!(!m.status(Duration::ZERO).peers[0].alive);
}

#[test]
fn farm_config_is_validated() {
    let mut cfg = config("node9");
    assert_eq!(
        Membership::new(cfg.clone(), 1, Duration::ZERO).err(),
        Some(FarmConfigError::NotAHost("node9".into()))
    );
    cfg.me = "node1".into();
    cfg.buckets = 100;
    assert_eq!(
        Membership::new(cfg.clone(), 1, Duration::ZERO).err(),
        Some(FarmConfigError::Table(TableError::BucketCount(100)))
    );
    cfg.buckets = 256;
    cfg.mlost_count = 0;
    assert_eq!(
        Membership::new(cfg, 1, Duration::ZERO).err(),
        Some(FarmConfigError::ZeroCount("mlost_count"))
    );
}

#[test]
fn farm_view_ids_depend_on_members_and_configuration_only() {
    let ids = ViewIds::new(&config("node1"));
    let both = ids.view(["node2".to_string(), "node1".to_string()].into());
    assert_eq!(
        both,
        ids.view(["node1".to_string(), "node2".to_string()].into())
    );
    assert_ne!(both.id, ids.view(["node1".to_string()].into()).id);
    let mut heavier = config("node2");
    heavier.hosts[0].power = 2;
    let other = ViewIds::new(&heavier).view(both.members.clone());
    assert_ne!(both.id, other.id, "powers are part of the id");
    assert_eq!(
        both.to_string(),
        format!("{{node1,node2}} (id {})", both.id)
    );
    assert_eq!(both.id.to_string().len(), 4);
}
