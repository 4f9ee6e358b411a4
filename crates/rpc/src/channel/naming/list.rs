//! `list://h1:p1,h2:p2 tag` and plain `host:port`: a fixed list.

use super::{parse_server_node, NamingService, NamingServiceActions, ServerNode};
use crate::RpcError;

/// A fixed list of servers (bRPC's `list://`): entries separated by
/// commas, each `host:port` with an optional tag after a space. Blank
/// entries (a trailing comma) are ignored; a malformed one is an error
/// naming it, since the list is written by hand, in code or a flag, and a
/// typo silently dropped would send all the traffic to the others.
#[derive(Debug, Clone)]
pub struct ListNamingService {
    servers: Vec<ServerNode>,
}

impl ListNamingService {
    /// Parses the part after `list://` (host names are resolved now).
    /// An empty list is allowed.
    pub fn parse(list: &str) -> Result<ListNamingService, RpcError> {
        let mut servers = Vec::new();
        for entry in list.split(',') {
            if let Some(node) = parse_server_node(entry)? {
                servers.push(node);
            }
        }
        Ok(ListNamingService { servers })
    }

    /// The servers, as listed.
    pub fn servers(&self) -> &[ServerNode] {
        &self.servers
    }
}

impl NamingService for ListNamingService {
    fn run(&mut self, actions: &NamingServiceActions) -> Result<(), RpcError> {
        // Nothing changes: the thread ends, the watcher keeps the list.
        actions.reset_servers(self.servers.clone());
        Ok(())
    }

    fn describe(&self) -> String {
        format!("list of {}", self.servers.len())
    }
}
