//! [`CallAttempt`]: one attempt of a call as the controller reports it
//! ([`Controller::attempts`](crate::Controller::attempts)).
//!
//! The controller keeps only the attempts that did not answer the call
//! (failures, and the loser of a backup pair); the answering one is
//! derived from the call's outcome. A call answered at its first try
//! therefore records nothing.

use std::net::SocketAddr;

use crate::RpcError;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptStatus {
    /// Its response ended the call successfully.
    Answered,
    /// It failed: this side's connection error, or the error the server
    /// answered with.
    Failed(RpcError),
    /// Its twin (the backup request, or the attempt it backed up)
    /// answered first; this one's answer, if any, was dropped.
    Superseded,
}

/// One attempt of a call: where it went and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CallAttempt {
    /// The server chosen for it (`None`: the selector had none).
    pub server: Option<SocketAddr>,
    /// Whether it was a backup request.
    pub backup: bool,
    /// How it ended.
    pub status: AttemptStatus,
}
