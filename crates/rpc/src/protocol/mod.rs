//! Wire protocols. Each protocol knows how to recognise its first bytes
//! (`probe`), cut one message out of a connection's input (`parse`) and
//! serialize one (`encode`); the RPC core will pick the protocol per
//! connection.

pub mod baidu_std;
