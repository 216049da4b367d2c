//! The server over real TCP: a real listener on 127.0.0.1:0 and a minimal HTTP/1.1 client,
//! so that routing, extraction failures and headers are tested as a load balancer sees them.

use super::serve;
use crate::config::Roots;
use crate::daemon::board::{Board, ModuleView};
use crate::mirror::data::DataRecord;
use crate::mirror::fsm::{PeerStatus, Status};
use crate::mirror::role::{Readiness, Role};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn view(module: &str, role: Role, readiness: Readiness) -> ModuleView {
    ModuleView {
        module: module.to_string(),
        role,
        status: Status {
            node: "node1".to_string(),
            role,
            readiness,
            reason: "test".to_string(),
            data: DataRecord::default(),
            failover: true,
            peer: PeerStatus {
                node: "node2".to_string(),
                up: false,
                role: None,
                readiness: None,
                data: None,
                heard_ms_ago: vec![("default".to_string(), None)],
                copy: None,
            },
            failing_checkers: BTreeMap::new(),
            restarts_in_interval: String::new(),
            running_step: None,
            data_mode: Default::default(),
            replicating_to: None,
            replication_up: false,
        },
        rejected_heartbeats: 0,
        data: None,
    }
}

fn settled(module: &str, role: Role) -> ModuleView {
    let readiness = match role {
        Role::Stop | Role::Wait => Readiness::NotReady,
        _ => Readiness::Ready,
    };
    view(module, role, readiness)
}

struct Server {
    addr: SocketAddr,
    board: Board,
    log_root: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _tmp: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let roots = Roots {
            conf: tmp.path().join("conf"),
            state: tmp.path().join("state"),
            log: tmp.path().join("log"),
        };
        std::fs::create_dir_all(&roots.log).unwrap();
        // Files a traversal would reach: next to the log root and at its parent.
        std::fs::create_dir_all(tmp.path().join("secret")).unwrap();
        std::fs::write(tmp.path().join("secret/module.log"), "SECRET\n").unwrap();
        std::fs::write(tmp.path().join("module.log"), "SECRET\n").unwrap();
        let board = Board::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let log_root = roots.log.clone();
        let task = tokio::spawn(serve(listener, board.clone(), roots, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            board,
            log_root,
            stop: Some(stop),
            task,
            _tmp: tmp,
        }
    }

    async fn get(&self, target: &str) -> Reply {
        self.request("GET", target).await
    }

    async fn request(&self, method: &str, target: &str) -> Reply {
        let raw = format!(
            "{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        Reply::parse(&self.send_raw(raw.as_bytes()).await)
    }

    async fn send_raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
            .await
            .expect("server answered in time")
            .unwrap();
        out
    }

    fn write_log(&self, module: &str, text: &str) {
        let dir = self.log_root.join(module);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("module.log"), text).unwrap();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_str(&self.body).unwrap()
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_string()
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[eol + 4 + size..];
    }
}

#[tokio::test]
async fn ready_is_200_on_prim_and_alone_only() {
    let s = Server::start().await;
    for (name, role) in [
        ("prim", Role::Prim),
        ("alone", Role::Alone),
        ("second", Role::Second),
        ("wait", Role::Wait),
        ("stop", Role::Stop),
    ] {
        s.board.publish(settled(name, role));
    }
    for name in ["prim", "alone"] {
        let r = s.get(&format!("/var/modules/{name}/ready.txt")).await;
        assert_eq!((r.status, r.body.as_str()), (200, "ready\n"), "{name}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
    for name in ["second", "wait", "stop", "unknown"] {
        let r = s.get(&format!("/var/modules/{name}/ready.txt")).await;
        assert_eq!(r.status, 404, "{name}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let r = s.get("/var/modules/second/ready.txt").await;
    assert_eq!(r.body, "not ready: SECOND Ready\n");
    let r = s.get("/var/modules/unknown/ready.txt").await;
    assert_eq!(r.body, "no module named unknown on this node\n");
}

#[tokio::test]
async fn ready_is_404_while_the_application_starts_or_stops() {
    let s = Server::start().await;
    // ALONE while start_prim runs, PRIM while stop_prim runs on a handover.
    s.board
        .publish(view("web", Role::Alone, Readiness::Transient));
    s.board
        .publish(view("db", Role::Prim, Readiness::Transient));
    for name in ["web", "db"] {
        let r = s.get(&format!("/var/modules/{name}/ready.txt")).await;
        assert_eq!(r.status, 404, "{name}");
        assert!(r.body.contains("Transient"), "{}", r.body);
    }
}

#[tokio::test]
async fn ready_follows_the_board_live() {
    let s = Server::start().await;
    let target = "/var/modules/web/ready.txt";
    assert_eq!(s.get(target).await.status, 404);
    s.board.publish(settled("web", Role::Prim));
    assert_eq!(s.get(target).await.status, 200);
    s.board.publish(settled("web", Role::Second));
    assert_eq!(s.get(target).await.status, 404);
    s.board.publish(settled("web", Role::Alone));
    assert_eq!(s.get(target).await.status, 200);
    s.board.publish(settled("web", Role::Stop));
    assert_eq!(s.get(target).await.status, 404);
}

#[tokio::test]
async fn ready_answers_head_for_load_balancers_that_use_it() {
    let s = Server::start().await;
    s.board.publish(settled("web", Role::Prim));
    let r = s.request("HEAD", "/var/modules/web/ready.txt").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = s.request("HEAD", "/var/modules/db/ready.txt").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn state_lists_every_module_with_role_strings() {
    let s = Server::start().await;
    s.board.publish(settled("web", Role::Prim));
    s.board.publish(settled("db", Role::Second));
    let r = s.get("/api/v1/state").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let json = r.json();
    let modules = json["modules"].as_array().unwrap();
    let roles: Vec<(&str, &str)> = modules
        .iter()
        .map(|m| (m["module"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("db", "SECOND"), ("web", "PRIM")]);
    assert_eq!(modules[1]["status"]["readiness"], "Ready");
    assert_eq!(modules[1]["status"]["peer"]["node"], "node2");
}

#[tokio::test]
async fn state_of_one_module() {
    let s = Server::start().await;
    assert_eq!(
        s.get("/api/v1/state").await.json()["modules"],
        serde_json::json!([])
    );
    s.board.publish(settled("web", Role::Alone));
    let r = s.get("/api/v1/modules/web/state").await;
    assert_eq!(r.status, 200);
    let json = r.json();
    assert_eq!(
        (json["module"].as_str(), json["role"].as_str()),
        (Some("web"), Some("ALONE"))
    );

    let r = s.get("/api/v1/modules/x/state").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "no module named x on this node");

    let r = s.get("/api/v1/modules/bad.name/state").await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("module"), "{}", r.body);
}

#[tokio::test]
async fn log_returns_the_last_lines() {
    let s = Server::start().await;
    let text: String = (1..=300).map(|i| format!("line {i}\n")).collect();
    s.write_log("web", &text);

    let r = s.get("/api/v1/modules/web/log?lines=3").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body, "line 298\nline 299\nline 300\n");

    let r = s.get("/api/v1/modules/web/log").await;
    let expected: String = (101..=300).map(|i| format!("line {i}\n")).collect();
    assert_eq!(r.body, expected, "default is 200 lines");

    let r = s.get("/api/v1/modules/web/log?lines=10000&_=123").await;
    assert_eq!((r.status, r.body.len()), (200, text.len()));
    assert_eq!(s.get("/api/v1/modules/web/log?lines=0").await.body, "");
}

#[tokio::test]
async fn log_missing_file_is_a_404_naming_the_path() {
    let s = Server::start().await;
    s.board.publish(settled("web", Role::Prim));
    let r = s.get("/api/v1/modules/web/log").await;
    assert_eq!(r.status, 404);
    let path = s.log_root.join("web/module.log");
    assert!(
        r.error().contains(&path.display().to_string()),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn log_rejects_bad_lines_naming_the_parameter() {
    let s = Server::start().await;
    s.write_log("web", "one\n");
    for bad in ["abc", "-1", "10001", "", "1.5", "99999999999999999999999"] {
        let r = s.get(&format!("/api/v1/modules/web/log?lines={bad}")).await;
        assert_eq!(r.status, 400, "lines={bad}");
        assert!(r.error().contains("lines"), "{}", r.body);
    }
    let r = s.get("/api/v1/modules/web/log?lines=1&lines=2").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn log_traversal_never_leaves_the_log_root() {
    let s = Server::start().await;
    s.write_log("web", "fine\n");
    for module in [
        "..%2fsecret",
        "..%2Fsecret",
        "%2e%2e%2fsecret",
        "..",
        "%2e%2e",
        "..%2f..%2fsecret",
        "a/b",
        "../secret",
        "../..",
        "web%2f..%2f..%2fsecret",
        "%00",
        "%ff",
        "web%20",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        for what in ["log", "state"] {
            let r = s.get(&format!("/api/v1/modules/{module}/{what}")).await;
            assert!(
                matches!(r.status, 400 | 404),
                "{module}/{what}: {}",
                r.status
            );
            assert!(!r.body.contains("SECRET"), "{module}/{what}: {}", r.body);
            r.json();
        }
        let r = s.get(&format!("/var/modules/{module}/ready.txt")).await;
        assert_eq!(r.status, 404, "{module}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let s = Server::start().await;
    for target in [
        "/nope",
        "/api/v1",
        "/api/v1/state/extra",
        "/var/modules/web",
        "/api/v2/state",
    ] {
        let r = s.get(target).await;
        assert_eq!(r.status, 404, "{target}");
        assert!(r.error().contains("no such path"), "{}", r.body);
    }
    let r = s.request("POST", "/api/v1/state").await;
    assert_eq!(r.status, 405);
    assert!(r.error().contains("read-only"), "{}", r.body);
}

#[tokio::test]
async fn index_lists_the_endpoints() {
    let s = Server::start().await;
    let r = s.get("/").await;
    assert_eq!(r.status, 200);
    for endpoint in ["ready.txt", "/api/v1/state", "/log?lines="] {
        assert!(r.body.contains(endpoint), "{endpoint}");
    }
}

#[tokio::test]
async fn garbage_does_not_stop_the_server_and_shutdown_is_graceful() {
    let mut s = Server::start().await;
    s.board.publish(settled("web", Role::Prim));
    let junk = s.send_raw(b"\x00\xff\r\n\r\nNOT HTTP AT ALL\r\n\r\n").await;
    assert!(junk.is_empty() || junk.starts_with(b"HTTP/1.1 400"));
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(100_000)
    );
    let _ = s.send_raw(long.as_bytes()).await;
    assert_eq!(s.get("/var/modules/web/ready.txt").await.status, 200);

    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), &mut s.task)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
}
