//! gRPC status codes and bRPC's mapping from its error codes.

use crate::errno;

/// gRPC's status codes (`grpc-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum GrpcStatus {
    /// Success.
    Ok = 0,
    /// Cancelled by the caller.
    Cancelled = 1,
    /// An error of no other kind.
    Unknown = 2,
    /// The request is malformed.
    InvalidArgument = 3,
    /// The deadline passed.
    DeadlineExceeded = 4,
    /// Not found.
    NotFound = 5,
    /// Already exists.
    AlreadyExists = 6,
    /// Not allowed.
    PermissionDenied = 7,
    /// A limit was reached.
    ResourceExhausted = 8,
    /// The system is not in the state the call needs.
    FailedPrecondition = 9,
    /// Aborted.
    Aborted = 10,
    /// Out of range.
    OutOfRange = 11,
    /// No such method (or encoding).
    Unimplemented = 12,
    /// An internal error.
    Internal = 13,
    /// The service cannot take the call now; it may be retried.
    Unavailable = 14,
    /// Data was lost.
    DataLoss = 15,
    /// The caller is not authenticated.
    Unauthenticated = 16,
}

/// bRPC's `ErrorCodeToGrpcStatus` (`src/brpc/grpc.cpp`).
pub fn grpc_status_of(code: i32) -> GrpcStatus {
    match code {
        0 => GrpcStatus::Ok,
        errno::ENOSERVICE | errno::ENOMETHOD => GrpcStatus::Unimplemented,
        errno::ERPCAUTH => GrpcStatus::Unauthenticated,
        errno::EREQUEST | libc::EINVAL => GrpcStatus::InvalidArgument,
        errno::ELIMIT => GrpcStatus::ResourceExhausted,
        errno::ELOGOFF => GrpcStatus::Unavailable,
        libc::EPERM => GrpcStatus::PermissionDenied,
        errno::ERPCTIMEDOUT => GrpcStatus::DeadlineExceeded,
        libc::ECANCELED => GrpcStatus::Cancelled,
        _ => GrpcStatus::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brpc_mapping() {
        assert_eq!(grpc_status_of(errno::ENOSERVICE), GrpcStatus::Unimplemented);
        assert_eq!(grpc_status_of(errno::ELIMIT), GrpcStatus::ResourceExhausted);
        assert_eq!(grpc_status_of(errno::ELOGOFF), GrpcStatus::Unavailable);
        assert_eq!(
            grpc_status_of(errno::ERPCTIMEDOUT),
            GrpcStatus::DeadlineExceeded
        );
        assert_eq!(grpc_status_of(libc::ETIMEDOUT), GrpcStatus::Internal);
        assert_eq!(grpc_status_of(errno::EINTERNAL), GrpcStatus::Internal);
    }
}
