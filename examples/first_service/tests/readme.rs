//! The root README's "Your first service" is this crate: each code block
//! there is one of its files, word for word, and the service works: in
//! process, and as the two binaries with a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fibrpc::{Channel, Controller, Server};
use first_service::kv::{GetRequest, KvServiceClient, KvServiceServer, PutRequest};
use first_service::Store;

/// The files the README shows, each in a block whose first line names it.
const FILES: [&str; 6] = [
    "Cargo.toml",
    "proto/kv.proto",
    "build.rs",
    "src/lib.rs",
    "src/main.rs",
    "src/bin/client.rs",
];

/// The one documented difference: the README depends on the published
/// crates, this crate on the workspace's (path dependencies).
fn normalize(file: &str, text: &str) -> String {
    if file != "Cargo.toml" {
        return text.to_string();
    }
    text.replace(r#"{ path = "../../crates/rpc" }"#, r#""0.1""#)
        .replace(r#"{ path = "../../crates/build" }"#, r#""0.1""#)
}

/// The fenced code blocks of the README's "Your first service" section.
fn readme_blocks() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("\n## Your first service\n")
        .expect("the README has a \"Your first service\" section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 4)];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match &mut current {
            None if line.starts_with("```") => current = Some(String::new()),
            None => {}
            Some(_) if line == "```" => blocks.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn the_readme_shows_exactly_this_crate() {
    let blocks = readme_blocks();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in FILES {
        let marks = [format!("// {file}\n"), format!("# {file}\n")];
        let shown = blocks
            .iter()
            .find(|b| marks.iter().any(|m| b.starts_with(m.as_str())))
            .unwrap_or_else(|| panic!("no README block starts with a line naming {file}"));
        let actual = std::fs::read_to_string(dir.join(file)).unwrap();
        assert_eq!(
            shown,
            &normalize(file, &actual),
            "the README's {file} differs from examples/first_service/{file}"
        );
    }
    // The README's prost is the workspace's.
    let workspace = std::fs::read_to_string(dir.join("../../Cargo.toml")).unwrap();
    assert!(
        workspace.contains("\nprost = \"0.14\"\n"),
        "the workspace moved off prost 0.14: update the README and this crate"
    );
}

#[test]
fn put_then_get_in_process() {
    let mut server = Server::new(Default::default());
    server
        .add_service(KvServiceServer::new(Store::default()))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();

    let client = KvServiceClient::new(Channel::new(addr, Default::default()).unwrap());
    let put = PutRequest {
        key: "k".into(),
        value: "v".into(),
    };
    client.put(&mut Controller::new(), &put).unwrap();
    let get = |key: &str| {
        let request = GetRequest { key: key.into() };
        client.get(&mut Controller::new(), &request).unwrap()
    };
    let hit = get("k");
    assert!(hit.found);
    assert_eq!(hit.value, "v");
    let miss = get("nothing");
    assert!(!miss.found);
    assert_eq!(miss.value, "");

    server.stop();
    server.join();
}

#[test]
fn the_binaries_serve_and_stop_on_sigterm() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_first-service"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    // Whatever happens below, the server does not outlive the test.
    struct Reaper(std::process::Child);
    impl Drop for Reaper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut server = Reaper(server);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the server prints its address");
    let addr = first
        .strip_prefix("serving on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));

    let client = Command::new(env!("CARGO_BIN_EXE_client"))
        .arg(addr)
        .output()
        .unwrap();
    assert!(client.status.success(), "client: {client:?}");
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "greeting = \"hello\" (found: true)\n"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let give_up = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < give_up, "the server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "the server exited with {status}");
}
