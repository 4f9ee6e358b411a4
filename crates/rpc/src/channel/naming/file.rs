//! `file:///path`: a list in a file, reloaded when it changes.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{parse_server_node, PeriodicNamingService, ServerNode};
use crate::RpcError;

/// How often the file's metadata is checked.
pub const FILE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Files larger than this are refused (a list of servers is small; a
/// wrong path to a large file must not be read into memory).
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// Servers listed in a file (bRPC's `file://`): one `host:port [tag]` per
/// line; blank lines and text from `#` to the end of a line are ignored.
/// The file's size, modification time and inode are checked every
/// [`FILE_POLL_INTERVAL`] and the file is read again when one changed, so
/// an edit is seen within about 100 ms. A malformed line is skipped with a
/// warning (the others still count: one bad line of a file edited while
/// servers run must not empty the list). Replace the file by renaming a
/// complete new one over it, or a reader may see it half written.
///
/// A missing file fails the watcher's start; a file that goes missing
/// later keeps the last list (and a warning is logged).
#[derive(Debug)]
pub struct FileNamingService {
    path: PathBuf,
    /// What the last read saw, and its list.
    last: Option<(FileStamp, Vec<ServerNode>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    ino: u64,
}

impl FileNamingService {
    /// Watches `path` (the part after `file://`). Fails if the file
    /// cannot be read now.
    pub fn new(path: &str) -> Result<FileNamingService, RpcError> {
        if path.is_empty() {
            return Err(RpcError::new(libc::EINVAL, "file:// needs a path"));
        }
        let ns = FileNamingService {
            path: PathBuf::from(path),
            last: None,
        };
        ns.stamp()?;
        Ok(ns)
    }

    fn stamp(&self) -> Result<FileStamp, RpcError> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.path).map_err(|e| self.error(e))?;
        if !m.is_file() {
            return Err(RpcError::new(
                libc::EINVAL,
                format!("server list {}: not a regular file", self.path.display()),
            ));
        }
        Ok(FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            ino: m.ino(),
        })
    }

    fn error(&self, e: std::io::Error) -> RpcError {
        RpcError::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("server list {}: {e}", self.path.display()),
        )
    }

    fn read(&self, stamp: FileStamp) -> Result<Vec<ServerNode>, RpcError> {
        if stamp.len > MAX_FILE_SIZE {
            return Err(RpcError::new(
                libc::EFBIG,
                format!(
                    "server list {}: {} bytes, more than {MAX_FILE_SIZE}",
                    self.path.display(),
                    stamp.len
                ),
            ));
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| self.error(e))?;
        Ok(parse_lines(&text, &self.path.display().to_string()))
    }
}

/// The servers of a file's text; malformed lines are logged and skipped.
pub(super) fn parse_lines(text: &str, source: &str) -> Vec<ServerNode> {
    let mut servers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        match parse_server_node(line) {
            Ok(Some(node)) => servers.push(node),
            Ok(None) => {}
            Err(e) => tracing::warn!(source, line = n + 1, error = %e, "skipping a server entry"),
        }
    }
    servers
}

impl PeriodicNamingService for FileNamingService {
    fn get_servers(&mut self) -> Result<Vec<ServerNode>, RpcError> {
        let stamp = self.stamp()?;
        if let Some((last, servers)) = &self.last {
            if *last == stamp {
                return Ok(servers.clone());
            }
        }
        let servers = self.read(stamp)?;
        self.last = Some((stamp, servers.clone()));
        Ok(servers)
    }

    fn interval(&self) -> Duration {
        FILE_POLL_INTERVAL
    }

    fn describe(&self) -> String {
        format!("file://{}", self.path.display())
    }
}
