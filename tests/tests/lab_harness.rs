//! Self-tests of the lab harness (root, real namespaces). They use no hakit daemon.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Mutex;

use anyhow::{Result, anyhow};
use hakit_lab::{DEADLINE, Host, Lab, Signal, WITNESS, cleanup_stale, wait_until};

fn wait_ping(from: &Host, to: &Host, reachable: bool) -> Result<()> {
    let what = format!(
        "{} {} {} at {}",
        from.name(),
        if reachable { "to reach" } else { "to lose" },
        to.name(),
        to.ip()
    );
    wait_until(&what, DEADLINE, || Ok(from.ping(to.ip())? == reachable))
}

fn lab_netns(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| *ns == prefix || ns.starts_with(&format!("{prefix}_")))
        .map(String::from)
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is dead too: only its exit status is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn hosts_ping_each_other_and_the_witness() -> Result<()> {
    let lab = Lab::new("ping")?;
    let node1 = lab.add_host("node1", "10.88.0.1")?;
    let node2 = lab.add_host("node2", "10.88.0.2")?;
    wait_ping(&node1, &node2, true)?;
    wait_ping(&node2, &node1, true)?;
    for host in [&node1, &node2] {
        wait_until(
            &format!("{} to reach the witness", host.name()),
            DEADLINE,
            || host.ping(WITNESS),
        )?;
    }
    let eth0 = node1.run_ok(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])?;
    assert!(eth0.contains("10.88.0.1/24"), "{eth0}");
    Ok(())
}

#[test]
fn client_reaches_a_server_on_a_host() -> Result<()> {
    let lab = Lab::new("client")?;
    let node1 = lab.add_host("node1", "10.88.0.1")?;
    let client = lab.add_client("client", "10.88.0.100")?;
    node1.write_file("/srv/app/www/index.html", "hello from node1\n", 0o644)?;
    let mut server = node1.spawn(
        [
            "python3",
            "-m",
            "http.server",
            "8080",
            "--directory",
            "/srv/app/www",
        ],
        "http.log",
    )?;
    let mut answer = String::new();
    wait_until("the client to get node1's page", DEADLINE, || {
        answer = client.http_get(node1.ip(), 8080, "/index.html")?;
        Ok(true)
    })?;
    assert_eq!(answer, "hello from node1\n");
    assert!(client.ping(node1.ip())?);
    // The page does not exist elsewhere: the server really runs in node1's file system.
    assert!(client.http_get(node1.ip(), 8080, "/missing.html").is_err());
    node1.kill(&mut server, Signal::SIGKILL)?;
    assert!(client.http_get(node1.ip(), 8080, "/index.html").is_err());
    Ok(())
}

#[test]
fn host_files_are_private() -> Result<()> {
    let lab = Lab::new("files")?;
    let node1 = lab.add_host("node1", "10.88.0.1")?;
    let node2 = lab.add_host("node2", "10.88.0.2")?;
    node1.write_file("/etc/hakit/probe", "node1 only\n", 0o600)?;

    assert_eq!(node1.run_ok(["cat", "/etc/hakit/probe"])?, "node1 only\n");
    assert_eq!(
        node1
            .run_ok(["stat", "-c", "%a", "/etc/hakit/probe"])?
            .trim(),
        "600"
    );
    assert!(
        !node2
            .run(["test", "-e", "/etc/hakit/probe"])?
            .status
            .success()
    );
    assert!(!Path::new("/etc/hakit/probe").exists());

    // Written from inside, seen by the harness through host.path(), nowhere else.
    for dir in ["/var/lib/hakit", "/var/log/hakit", "/srv/app"] {
        let file = format!("{dir}/inside");
        node2.run_ok(["sh", "-c", &format!("echo from-node2 > {file}")])?;
        assert_eq!(node2.read_file(&file)?, "from-node2\n");
        assert!(
            !node1.run(["test", "-e", &file])?.status.success(),
            "{file} leaked to node1"
        );
        assert!(
            !Path::new(&file).exists(),
            "{file} leaked to the root namespace"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(
        !mounts.contains(" /etc/hakit "),
        "a bind mount leaked to the root namespace"
    );

    assert!(node1.path("/etc/passwd").is_err());
    assert!(node1.path("/etc/hakit/../../etc/passwd").is_err());
    Ok(())
}

#[test]
fn link_down_cuts_and_link_up_restores() -> Result<()> {
    let lab = Lab::new("link")?;
    let node1 = lab.add_host("node1", "10.88.0.1")?;
    let node2 = lab.add_host("node2", "10.88.0.2")?;
    wait_ping(&node1, &node2, true)?;
    node1.link_down()?;
    wait_ping(&node1, &node2, false)?;
    wait_ping(&node2, &node1, false)?;
    node1.link_up()?;
    wait_ping(&node1, &node2, true)?;
    wait_ping(&node2, &node1, true)?;
    Ok(())
}

#[test]
fn a_dropped_lab_leaves_nothing_behind() -> Result<()> {
    let lab = Lab::new("drop")?;
    let node1 = lab.add_host("node1", "10.88.0.1")?;
    let mut child = node1.spawn(["sleep", "1000"], "sleep.log")?;
    let (prefix, holder, root) = (
        lab.prefix().to_string(),
        node1.pid(),
        node1.root().to_path_buf(),
    );
    assert_eq!(lab_netns(&prefix).len(), 2);
    assert!(alive(holder));
    drop(lab);

    assert_eq!(lab_netns(&prefix), Vec::<String>::new());
    assert!(!alive(holder), "holder {holder} survived");
    let status = child.wait()?; // returns only because the lab killed it
    assert!(!status.success());
    assert!(!root.exists(), "{} survived", root.display());
    assert!(
        node1
            .run(["true"])
            .map(|o| !o.status.success())
            .unwrap_or(true)
    );
    Ok(())
}

#[test]
fn a_panicking_test_leaves_nothing_behind() -> Result<()> {
    let seen: Mutex<Option<(String, u32, Child)>> = Mutex::new(None);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let lab = Lab::new("panic").unwrap();
        let node1 = lab.add_host("node1", "10.88.0.1").unwrap();
        let child = node1.spawn(["sleep", "1000"], "sleep.log").unwrap();
        *seen.lock().unwrap() = Some((lab.prefix().to_string(), node1.pid(), child));
        panic!("deliberate panic with a lab up");
    }));
    assert!(outcome.is_err());
    let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
    let (prefix, holder, mut child) = seen.ok_or(anyhow!("the lab never came up"))?;
    assert_eq!(lab_netns(&prefix), Vec::<String>::new());
    assert!(!alive(holder), "holder {holder} survived");
    let status = child.wait()?; // returns only because the lab killed it
    assert!(!status.success());
    Ok(())
}

#[test]
fn stale_namespaces_of_dead_processes_are_removed() -> Result<()> {
    let mut gone = Command::new("true").spawn()?;
    gone.wait()?;
    let stale = format!("hkl{}_0_node1", gone.id());
    let out = Command::new("ip").args(["netns", "add", &stale]).output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cleanup_stale()?;
    let list = Command::new("ip").args(["netns", "list"]).output()?;
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&stale));
    Ok(())
}

#[test]
fn bad_input_is_an_error_not_a_panic() -> Result<()> {
    let lab = Lab::new("input")?;
    assert!(lab.add_host("Node 1", "10.88.0.1").is_err());
    assert!(lab.add_host("node1", "10.88.1.1").is_err());
    assert!(lab.add_host("node1", "10.88.0.254").is_err());
    assert!(lab.add_host("node1", "not an ip").is_err());
    let node1 = lab.add_host("node1", "10.88.0.1")?;
    assert!(lab.add_host("node2", "10.88.0.1").is_err());
    assert!(node1.run(Vec::<&str>::new()).is_err());
    let err = node1
        .run_ok(["sh", "-c", "echo broken >&2; exit 7"])
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("on node1") && msg.contains("broken"), "{msg}");
    assert!(node1.output_file("../x").is_err());
    assert!(Lab::new("bad name").is_err());
    Ok(())
}

#[test]
fn a_second_network_is_cut_on_its_own_and_removed_with_the_lab() -> Result<()> {
    let lab = Lab::new("twonets")?;
    let node1 = lab.add_host("node1", "10.88.0.1")?;
    let node2 = lab.add_host("node2", "10.88.0.2")?;
    let backup = lab.add_network("backup", "10.89.0.0/24")?;
    node1.attach(&backup, "10.89.0.1")?;
    node2.attach(&backup, "10.89.0.2")?;
    assert_eq!(backup.interface(), "eth1");
    let eth1 = node1.run_ok(["ip", "-4", "-o", "addr", "show", "dev", "eth1"])?;
    assert!(eth1.contains("10.89.0.1/24"), "{eth1}");
    assert_eq!(node2.ip_on(&backup)?.to_string(), "10.89.0.2");
    let on_backup = |from: &Host, reachable: bool| {
        wait_until(
            &format!("{} to reach node2 on backup: {reachable}", from.name()),
            DEADLINE,
            || Ok(from.ping(node2.ip_on(&backup)?)? == reachable),
        )
    };
    on_backup(&node1, true)?;
    node1.link_down_on(&backup)?;
    on_backup(&node1, false)?;
    wait_ping(&node1, &node2, true)?;
    node1.link_down()?;
    node1.link_up_on(&backup)?;
    on_backup(&node1, true)?;
    wait_ping(&node1, &node2, false)?;
    node1.link_up()?;
    wait_ping(&node1, &node2, true)?;

    let client = lab.add_client("client", "10.88.0.100")?;
    for (bad, says) in [
        (
            lab.add_network("backup", "10.90.0.0/24").err(),
            "it has network backup",
        ),
        (
            lab.add_network("other", "10.88.0.0/16").err(),
            "it has network default",
        ),
        (lab.add_network("other", "10.90.0.1/24").err(), "bad subnet"),
        (
            lab.add_network("Other", "10.90.0.0/24").err(),
            "bad network name",
        ),
        (
            node1.attach(&backup, "10.89.0.3").err(),
            "already has host node1",
        ),
        (
            client.attach(&backup, "10.89.0.2").err(),
            "already has host node2",
        ),
        (
            client.attach(&backup, "10.89.1.1").err(),
            "use 10.89.0.1 to",
        ),
        (
            client.link_down_on(&backup).err(),
            "client is not on network backup",
        ),
    ] {
        let msg = format!("{:#}", bad.ok_or(anyhow!("accepted, expected: {says}"))?);
        assert!(msg.contains(says), "{msg}");
    }

    let prefix = lab.prefix().to_string();
    assert_eq!(lab_netns(&prefix).len(), 5, "{:?}", lab_netns(&prefix));
    drop(lab);
    assert_eq!(lab_netns(&prefix), Vec::<String>::new());
    Ok(())
}
