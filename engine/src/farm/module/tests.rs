use super::*;
use crate::farm::table::Member;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn module(me: &str, hosts: &[&str]) -> FarmModule {
    let hosts = hosts.iter().map(|h| Member::new(*h, 1)).collect();
    let cfg = FarmConfig::with_defaults(me, hosts, vec!["default".to_string()]);
    FarmModule::new(cfg, 1, ms(0)).unwrap().0
}

fn runs(actions: &[Action]) -> Vec<Script> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Run(s) => Some(*s),
            _ => None,
        })
        .collect()
}

fn installs(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Membership(membership::Action::InstallTable { .. })
            )
        })
        .count()
}

fn done(ok: bool) -> Input {
    Input::ScriptDone {
        ok,
        detail: "exit 0".to_string(),
    }
}

#[test]
fn start_runs_start_both_then_joins_and_answers_arp_alone() {
    let mut m = module("node1", &["node1"]);
    assert_eq!(m.state(), FarmState::Stop);
    let (answer, actions) = m.command(ms(0), Command::Start);
    assert!(answer.is_ok());
    assert_eq!(runs(&actions), [Script::StartBoth]);
    assert!(actions.contains(&Action::Intent(true)));
    assert_eq!(m.state(), FarmState::Wait);
    assert_eq!(m.running_script(), Some("start_both"));
    assert!(m.command(ms(1), Command::Start).0.is_err());
    assert!(
        m.command(ms(1), Command::Stop).0.is_err(),
        "not while start_both runs"
    );

    let actions = m.handle(ms(10), done(true));
    assert!(actions.contains(&Action::Checkers(true)));
    assert_eq!(installs(&actions), 1, "alone in its farm: its view at once");
    assert!(actions.contains(&Action::ArpResponder(true)));
    assert_eq!(m.state(), FarmState::Up);
    assert!(m.is_responder());
}

#[test]
fn stop_withdraws_before_stop_both_and_keeps_quiet_after() {
    let mut m = module("node1", &["node1"]);
    assert!(m.command(ms(0), Command::Start).0.is_ok());
    m.handle(ms(10), done(true));
    let (answer, actions) = m.command(ms(20), Command::Stop);
    assert!(answer.is_ok());
    let withdraw = actions
        .iter()
        .position(|a| *a == Action::Membership(membership::Action::Withdraw))
        .expect("withdraws");
    let script = actions
        .iter()
        .position(|a| *a == Action::Run(Script::StopBoth))
        .expect("stop_both");
    assert!(withdraw < script, "{actions:?}");
    assert!(actions.contains(&Action::ArpResponder(false)));
    assert!(actions.contains(&Action::Intent(false)));
    assert_eq!(m.state(), FarmState::Stop);
    assert!(!m.is_stopped(), "stop_both still runs");
    m.handle(ms(30), done(true));
    assert!(m.is_stopped());
    assert_eq!(
        m.command(ms(40), Command::Stop).0,
        Ok("the module is already stopped".into())
    );
}

#[test]
fn a_failed_start_both_is_cleaned_up_with_stop_both() {
    let mut m = module("node1", &["node1"]);
    assert!(m.command(ms(0), Command::Start).0.is_ok());
    let actions = m.handle(ms(10), done(false));
    assert_eq!(runs(&actions), [Script::StopBoth]);
    assert_eq!(installs(&actions), 0);
    m.handle(ms(20), done(true));
    assert!(m.is_stopped());
}

#[test]
fn shutdown_during_start_both_stops_after_it_and_keeps_the_intent() {
    let mut m = module("node1", &["node1"]);
    assert!(m.command(ms(0), Command::Start).0.is_ok());
    assert!(m.shutdown(ms(5)).is_empty());
    let actions = m.handle(ms(10), done(true));
    assert_eq!(runs(&actions), [Script::StopBoth]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Intent(_))));
    m.handle(ms(20), done(true));
    assert!(m.is_stopped());
}

#[test]
fn a_failing_checker_leaves_the_view_and_its_recovery_rejoins() {
    let mut m = module("node1", &["node1"]);
    assert!(m.command(ms(0), Command::Start).0.is_ok());
    m.handle(ms(10), done(true));
    let actions = m.handle(
        ms(20),
        Input::Checker {
            ident: "web".into(),
            failing: true,
            detail: "tcp 10.0.0.1:80 refused".into(),
        },
    );
    assert!(actions.contains(&Action::Membership(membership::Action::Withdraw)));
    assert!(actions.contains(&Action::ArpResponder(false)));
    assert_eq!(m.state(), FarmState::Wait);
    let actions = m.handle(
        ms(30),
        Input::Checker {
            ident: "web".into(),
            failing: false,
            detail: String::new(),
        },
    );
    assert_eq!(installs(&actions), 1);
    assert_eq!(m.state(), FarmState::Up);
}

#[test]
fn only_the_first_member_of_the_view_answers_arp() {
    let mut a = module("node1", &["node1", "node2"]);
    let mut b = module("node2", &["node1", "node2"]);
    let mut now = ms(0);
    for m in [&mut a, &mut b] {
        assert!(m.command(now, Command::Start).0.is_ok());
        m.handle(now, done(true));
    }
    for _ in 0..30 {
        now += ms(100);
        let (adv_a, adv_b) = (a.advert(), b.advert());
        a.handle(
            now,
            Input::Heartbeat {
                net: 0,
                from: "node2".into(),
                advert: adv_b,
            },
        );
        b.handle(
            now,
            Input::Heartbeat {
                net: 0,
                from: "node1".into(),
                advert: adv_a,
            },
        );
        a.handle(now, Input::Tick);
        b.handle(now, Input::Tick);
    }
    assert_eq!((a.state(), b.state()), (FarmState::Up, FarmState::Up));
    assert!(a.is_responder());
    assert!(!b.is_responder());
}
