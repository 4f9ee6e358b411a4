//! A tiny file server: a line protocol answered with `sendfile`.
//!
//! ```text
//! cargo run --release -p fibrpc-fiber --example file_server -- --port 7002 --root /usr/share/doc
//! printf 'GET bash/README\n' | nc -q1 127.0.0.1 7002
//! ```
//!
//! Request: `GET <name>\n`, a path relative to the root (no `..`). Answer:
//! `OK <size>\n` followed by exactly `size` bytes sent with `sendfile(2)`
//! (page cache to socket, no copy through user space), or `ERR <reason>\n`.
//! Several requests may follow on one connection.

use fiber::net::{TcpListener, TcpStream};
use fibrpc_fiber as fiber;
use std::io::{BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

fn main() -> std::io::Result<()> {
    let mut port = 7002u16;
    let mut root = std::env::current_dir()?;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--root" => root = PathBuf::from(args.next().expect("--root DIR")),
            other => panic!("unknown argument {other}; use --port N --root DIR"),
        }
    }
    let root = Arc::new(root.canonicalize()?);
    fiber::Runtime::global().block_on(move || {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        println!(
            "listening on {} serving {}",
            listener.local_addr()?,
            root.display()
        );
        loop {
            let (conn, _) = listener.accept()?;
            let root = root.clone();
            drop(fiber::spawn(move || {
                if let Err(e) = serve(conn, &root) {
                    eprintln!("file_server: connection ended: {e}");
                }
            }));
        }
    })
}

fn serve(conn: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let Some(name) = line.trim_end().strip_prefix("GET ") else {
            (&conn).write_all(b"ERR expected: GET <name>\n")?;
            continue;
        };
        match open(root, name) {
            Ok((file, size)) => {
                (&conn).write_all(format!("OK {size}\n").as_bytes())?;
                let sent = conn.send_file(&file, 0, size)?;
                if sent != size {
                    // The file shrank while we sent it: the byte count we
                    // promised is wrong, so the connection cannot go on.
                    return Err(std::io::Error::other("file shrank during send"));
                }
            }
            Err(e) => (&conn).write_all(format!("ERR {e}\n").as_bytes())?,
        }
    }
}

/// Opens `name` under `root`, refusing absolute paths and `..`.
fn open(root: &Path, name: &str) -> std::io::Result<(std::fs::File, u64)> {
    let rel = Path::new(name);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "only relative paths below the root",
        ));
    }
    let file = std::fs::File::open(root.join(rel))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok((file, meta.len()))
}
