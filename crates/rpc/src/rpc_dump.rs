//! Sampling real requests to files (bRPC's `rpc_dump`), for replaying
//! them later with `fibrpc_press --replay DIR` (bRPC's `rpc_replay`).
//!
//! A server with [`ServerOptions::rpc_dump`](crate::ServerOptions::rpc_dump)
//! writes one request in every [`RpcDumpOptions::sample_every`] that
//! reaches a method — of every protocol, after the protocol took it
//! apart — as a [`DumpRecord`]: the protocol's name, the service and the
//! method, the serialized protobuf request (HTTP JSON bodies already
//! transcoded) and the attachment.
//!
//! # File format
//!
//! Files are named `requests.<pid>.<start-ms>.<seq>.dump` (`seq` padded
//! to six digits, so names sort in writing order). A file is a sequence
//! of records, each:
//!
//! ```text
//! "FDR1"                      4 bytes, the record magic
//! u32 big-endian length + bytes   protocol   ("baidu_std", "http", "grpc")
//! u32 big-endian length + bytes   service    (full name: "example.EchoService")
//! u32 big-endian length + bytes   method     ("Echo")
//! u32 big-endian length + bytes   request    (serialized protobuf)
//! u32 big-endian length + bytes   attachment (baidu_std's; empty otherwise)
//! ```
//!
//! A record is written with one `write` call as soon as it is sampled, so
//! a server that is killed leaves whole records behind except, at worst,
//! the last one, which [`read_dir`] drops. A file holds at most
//! [`RpcDumpOptions::max_requests_per_file`] records; beyond
//! [`RpcDumpOptions::max_files`] files the oldest this server wrote is
//! deleted, so the disk used is bounded.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use fibrpc_iobuf::IOBuf;

/// The magic that starts every record.
pub const RECORD_MAGIC: &[u8; 4] = b"FDR1";

/// A field longer than this is taken for corruption by the reader (64
/// MiB, above the default `max_body_size`).
pub const MAX_FIELD_LEN: u32 = 64 << 20;

/// Where and how much a server dumps (bRPC's `rpc_dump_dir`,
/// `rpc_dump_max_files`, `rpc_dump_max_requests_in_one_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcDumpOptions {
    /// The directory the files go to (created at `Server::start`).
    pub dir: PathBuf,
    /// Dump one request in this many (1: every request; default 1).
    pub sample_every: u64,
    /// Records per file before the next file starts (default 1000).
    pub max_requests_per_file: usize,
    /// Files kept: the oldest this server wrote is deleted beyond this
    /// many (default 32).
    pub max_files: usize,
}

impl RpcDumpOptions {
    /// Every request into `dir`, bRPC's file limits.
    pub fn new(dir: impl Into<PathBuf>) -> RpcDumpOptions {
        RpcDumpOptions {
            dir: dir.into(),
            sample_every: 1,
            max_requests_per_file: 1000,
            max_files: 32,
        }
    }
}

/// One dumped request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DumpRecord {
    /// The protocol it came in with (`"baidu_std"`, `"http"`, `"grpc"`).
    pub protocol: String,
    /// The service's full name.
    pub service: String,
    /// The method's name.
    pub method: String,
    /// The serialized protobuf request.
    pub request: Vec<u8>,
    /// The request attachment (baidu_std).
    pub attachment: Vec<u8>,
}

impl DumpRecord {
    /// The record in the file format (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        encode_fields([
            self.protocol.as_bytes(),
            self.service.as_bytes(),
            self.method.as_bytes(),
            &self.request,
            &self.attachment,
        ])
    }

    /// Reads the next record from `r`: `Ok(None)` at a clean end of
    /// input or after a truncated last record (a server killed while
    /// writing); an error for anything else that is not a record.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<DumpRecord>> {
        let mut magic = [0u8; 4];
        if read_full(r, &mut magic)? < magic.len() {
            return Ok(None);
        }
        if &magic != RECORD_MAGIC {
            return Err(corrupt(format!("bad record magic {magic:?}")));
        }
        let mut fields: [Vec<u8>; 5] = Default::default();
        for f in &mut fields {
            match read_field(r)? {
                Some(v) => *f = v,
                None => return Ok(None),
            }
        }
        let [protocol, service, method, request, attachment] = fields;
        let text = |v: Vec<u8>, what: &str| {
            String::from_utf8(v).map_err(|_| corrupt(format!("the {what} is not UTF-8")))
        };
        Ok(Some(DumpRecord {
            protocol: text(protocol, "protocol")?,
            service: text(service, "service")?,
            method: text(method, "method")?,
            request,
            attachment,
        }))
    }
}

/// Every record of every `*.dump` file in `dir`, files in name order
/// (which is writing order for one server).
pub fn read_dir(dir: impl AsRef<Path>) -> io::Result<Vec<DumpRecord>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.as_ref())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dump"))
        .collect();
    files.sort();
    let mut records = Vec::new();
    for path in files {
        let mut r = io::BufReader::new(File::open(&path)?);
        while let Some(rec) = DumpRecord::read_from(&mut r)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        {
            records.push(rec);
        }
    }
    Ok(records)
}

fn encode_fields<const N: usize>(fields: [&[u8]; N]) -> Vec<u8> {
    let len = 4 + fields.iter().map(|f| 4 + f.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(RECORD_MAGIC);
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A length-prefixed field; `None` if the input ends inside it.
fn read_field(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    if read_full(r, &mut len)? < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FIELD_LEN {
        return Err(corrupt(format!("a field of {len} bytes")));
    }
    let mut v = vec![0u8; len as usize];
    if read_full(r, &mut v)? < v.len() {
        return Ok(None);
    }
    Ok(Some(v))
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not an rpc dump: {what}"),
    )
}

/// A running server's dumper: samples, appends, rotates.
pub(crate) struct RpcDumper {
    options: RpcDumpOptions,
    /// Requests seen, for sampling.
    seen: AtomicU64,
    /// Set at the first write error: dumping stops (logged once) rather
    /// than failing every sampled request's write again.
    broken: AtomicBool,
    /// `requests.<pid>.<start-ms>`: this server's file name prefix.
    prefix: String,
    state: Mutex<DumpState>,
}

#[derive(Default)]
struct DumpState {
    file: Option<File>,
    in_file: usize,
    next_seq: u64,
    /// The files this server wrote, oldest first.
    written: VecDeque<PathBuf>,
}

impl RpcDumper {
    /// A dumper into `options.dir`, which is created if missing.
    pub(crate) fn new(options: RpcDumpOptions) -> io::Result<RpcDumper> {
        std::fs::create_dir_all(&options.dir)?;
        let start_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Ok(RpcDumper {
            prefix: format!("requests.{}.{start_ms}", std::process::id()),
            options,
            seen: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            state: Mutex::new(DumpState::default()),
        })
    }

    /// Dumps this request if it is the one sampled in
    /// [`RpcDumpOptions::sample_every`].
    pub(crate) fn sample(
        &self,
        protocol: &str,
        service: &str,
        method: &str,
        request: &IOBuf,
        attachment: &IOBuf,
    ) {
        let every = self.options.sample_every.max(1);
        if self.seen.fetch_add(1, Ordering::Relaxed) % every != 0
            || self.broken.load(Ordering::Relaxed)
        {
            return;
        }
        let record = encode_fields([
            protocol.as_bytes(),
            service.as_bytes(),
            method.as_bytes(),
            &request.to_vec(),
            &attachment.to_vec(),
        ]);
        if let Err(e) = self.append(&record) {
            if !self.broken.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    dir = %self.options.dir.display(),
                    error = %e,
                    "rpc_dump: cannot write; no more requests are dumped"
                );
            }
        }
    }

    fn append(&self, record: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.file.is_none() || s.in_file >= self.options.max_requests_per_file.max(1) {
            let path = self
                .options
                .dir
                .join(format!("{}.{:06}.dump", self.prefix, s.next_seq));
            s.next_seq += 1;
            s.file = Some(File::create(&path)?);
            s.in_file = 0;
            s.written.push_back(path);
            while s.written.len() > self.options.max_files.max(1) {
                if let Some(old) = s.written.pop_front() {
                    // Already gone (removed by hand) is fine.
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        s.in_file += 1;
        // One write per record: a killed server leaves whole records.
        s.file.as_mut().expect("opened above").write_all(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> DumpRecord {
        DumpRecord {
            protocol: "baidu_std".into(),
            service: "example.EchoService".into(),
            method: "Echo".into(),
            request: vec![i as u8; i],
            attachment: b"att".to_vec(),
        }
    }

    #[test]
    fn records_round_trip_and_a_truncated_tail_is_dropped() {
        let mut bytes = Vec::new();
        for i in 0..3 {
            bytes.extend(record(i).encode());
        }
        let whole = bytes.len();
        bytes.extend(&record(9).encode()[..7]);
        let mut r = &bytes[..];
        let mut got = Vec::new();
        while let Some(rec) = DumpRecord::read_from(&mut r).unwrap() {
            got.push(rec);
        }
        assert_eq!(got, (0..3).map(record).collect::<Vec<_>>());
        assert!(whole < bytes.len());
    }

    #[test]
    fn garbage_is_an_error_and_huge_fields_are_refused() {
        let mut r = &b"GARBAGE!"[..];
        assert!(DumpRecord::read_from(&mut r).is_err());
        let mut huge = RECORD_MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(DumpRecord::read_from(&mut &huge[..]).is_err());
    }

    #[test]
    fn dumper_samples_rotates_and_bounds_files() {
        let dir = std::env::temp_dir().join(format!("fibrpc-dump-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dumper = RpcDumper::new(RpcDumpOptions {
            dir: dir.clone(),
            sample_every: 2,
            max_requests_per_file: 3,
            max_files: 2,
        })
        .unwrap();
        for i in 0..20u8 {
            dumper.sample("http", "s.S", "M", &IOBuf::from(&[i][..]), &IOBuf::new());
        }
        // 10 sampled (0, 2, ..., 18) in files of 3: 4 files, 2 kept (the
        // last holds one record).
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 2);
        let got = read_dir(&dir).unwrap();
        let bodies: Vec<u8> = got.iter().map(|r| r.request[0]).collect();
        assert_eq!(bodies, vec![12, 14, 16, 18]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
