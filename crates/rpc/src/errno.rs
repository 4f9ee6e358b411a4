//! bRPC's error code numbers (`brpc/errno.proto`), kept identical so that
//! error codes cross the wire unchanged between fibrpc and bRPC.
//!
//! Codes 1001–1018 are raised by the framework on the client or server side,
//! 2001–2006 by the server. System `errno` values (e.g. `ECONNREFUSED`),
//! all below 1000, are used as codes too; [`name`] and [`describe`] know
//! only bRPC's own.
//!
//! **Application codes**: bRPC keeps 1–999 for system `errno` values and
//! 1000–1999 for itself, and defines 2001–2006. Applications use codes
//! from 2000 up that bRPC does not define (3000 and above leaves room for
//! bRPC's future codes) or negative codes; [`is_reserved`] tells which
//! codes are taken. See [`crate::RpcError`] for how codes are retried and
//! how they map to HTTP statuses.

/// The service is not found on the server.
pub const ENOSERVICE: i32 = 1001;
/// The method is not found in the service.
pub const ENOMETHOD: i32 = 1002;
/// Bad request (e.g. the payload does not parse).
pub const EREQUEST: i32 = 1003;
/// Unauthorized.
pub const ERPCAUTH: i32 = 1004;
/// Too many sub-channels failed (parallel channels).
pub const ETOOMANYFAILS: i32 = 1005;
/// A parallel channel finished.
pub const EPCHANFINISH: i32 = 1006;
/// Sending a backup request.
pub const EBACKUPREQUEST: i32 = 1007;
/// The RPC call timed out.
pub const ERPCTIMEDOUT: i32 = 1008;
/// The connection broke during the RPC.
pub const EFAILEDSOCKET: i32 = 1009;
/// Bad HTTP call.
pub const EHTTP: i32 = 1010;
/// Too many messages are buffered on the connection.
pub const EOVERCROWDED: i32 = 1011;
/// Got EOF.
pub const EEOF: i32 = 1014;
/// The socket was not needed.
pub const EUNUSED: i32 = 1015;
/// SSL-related error.
pub const ESSL: i32 = 1016;
/// HTTP/2: the connection ran out of stream ids.
pub const EH2RUNOUTSTREAMS: i32 = 1017;
/// The request was rejected.
pub const EREJECT: i32 = 1018;
/// Internal server error.
pub const EINTERNAL: i32 = 2001;
/// Bad response.
pub const ERESPONSE: i32 = 2002;
/// The server is stopping.
pub const ELOGOFF: i32 = 2003;
/// The server reached its concurrency limit.
pub const ELIMIT: i32 = 2004;
/// Close the connection.
pub const ECLOSE: i32 = 2005;
/// Failed Itp response.
pub const EITP: i32 = 2006;

/// Every bRPC code: (number, name, description).
pub const ALL: &[(i32, &str, &str)] = &[
    (ENOSERVICE, "ENOSERVICE", "Service not found"),
    (ENOMETHOD, "ENOMETHOD", "Method not found"),
    (EREQUEST, "EREQUEST", "Bad request"),
    (ERPCAUTH, "ERPCAUTH", "Unauthorized"),
    (
        ETOOMANYFAILS,
        "ETOOMANYFAILS",
        "Too many sub channels failed",
    ),
    (EPCHANFINISH, "EPCHANFINISH", "ParallelChannel finished"),
    (EBACKUPREQUEST, "EBACKUPREQUEST", "Sending backup request"),
    (ERPCTIMEDOUT, "ERPCTIMEDOUT", "RPC call is timed out"),
    (EFAILEDSOCKET, "EFAILEDSOCKET", "Broken socket"),
    (EHTTP, "EHTTP", "Bad http call"),
    (EOVERCROWDED, "EOVERCROWDED", "The server is overcrowded"),
    (EEOF, "EEOF", "Got EOF"),
    (EUNUSED, "EUNUSED", "The socket was not needed"),
    (ESSL, "ESSL", "SSL related operation failed"),
    (
        EH2RUNOUTSTREAMS,
        "EH2RUNOUTSTREAMS",
        "The H2 socket was run out of streams",
    ),
    (EREJECT, "EREJECT", "The Request is rejected"),
    (EINTERNAL, "EINTERNAL", "Internal Server Error"),
    (ERESPONSE, "ERESPONSE", "Bad Response"),
    (ELOGOFF, "ELOGOFF", "Server is stopping"),
    (ELIMIT, "ELIMIT", "Reached server's max_concurrency"),
    (ECLOSE, "ECLOSE", "Close socket initiatively"),
    (EITP, "EITP", "Failed Itp response"),
];

/// The symbolic name of a bRPC code (`"ENOSERVICE"` for 1001), or `None`
/// for codes bRPC does not define (0, system errno values, ...).
pub fn name(code: i32) -> Option<&'static str> {
    ALL.iter().find(|e| e.0 == code).map(|e| e.1)
}

/// bRPC's description of a code (`"Service not found"` for 1001), or `None`
/// for codes bRPC does not define.
pub fn describe(code: i32) -> Option<&'static str> {
    ALL.iter().find(|e| e.0 == code).map(|e| e.2)
}

/// Whether `code` is taken by the system or by bRPC (0, 1–999 for system
/// `errno` values, 1000–1999, and bRPC's 2001–2006), so an application
/// should not use it for its own errors.
pub fn is_reserved(code: i32) -> bool {
    (0..2000).contains(&code) || name(code).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_brpc() {
        assert_eq!(ENOSERVICE, 1001);
        assert_eq!(EREJECT, 1018);
        assert_eq!(EINTERNAL, 2001);
        assert_eq!(EITP, 2006);
        assert_eq!(name(1008), Some("ERPCTIMEDOUT"));
        assert_eq!(describe(ELIMIT), Some("Reached server's max_concurrency"));
        assert_eq!(name(0), None);
        assert_eq!(name(1012), None);
        assert_eq!(ALL.len(), 22);
        assert!(is_reserved(libc::ECONNREFUSED));
        assert!(is_reserved(1500));
        assert!(is_reserved(EINTERNAL));
        assert!(!is_reserved(2000));
        assert!(!is_reserved(3000));
        assert!(!is_reserved(-1));
    }
}
