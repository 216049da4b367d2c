//! Pieces of the small Python programs the lab benchmarks run inside the nodes (one TCP
//! stream between two nodes), as macros so that the programs stay `&'static str`s.

/// `sock`: a connection to (`sys.argv[1]`, `int(sys.argv[2])`), retried for 10 s while the
/// receiver starts.
macro_rules! connect_py {
    () => {
        r#"
import socket, sys, time
deadline = time.monotonic() + 10
while True:
    try:
        sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
"#
    };
}

/// `conn`: the one connection accepted on port `int(sys.argv[1])`.
macro_rules! accept_py {
    () => {
        r#"
import socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(1)
conn, _ = srv.accept()
"#
    };
}
