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

impl GrpcStatus {
    /// The status of a `grpc-status` code (`None` past 16).
    pub fn from_code(code: u32) -> Option<GrpcStatus> {
        use GrpcStatus::*;
        const ALL: [GrpcStatus; 17] = [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ];
        ALL.get(code as usize).copied()
    }
}

/// bRPC's `GrpcStatusToErrorCode` (`src/brpc/grpc.cpp`): the error code
/// a client gives a call that failed with `status`.
pub fn error_code_of(status: GrpcStatus) -> i32 {
    use GrpcStatus::*;
    match status {
        Ok => 0,
        Cancelled => libc::ECANCELED,
        InvalidArgument => libc::EINVAL,
        DeadlineExceeded => errno::ERPCTIMEDOUT,
        AlreadyExists => libc::EEXIST,
        PermissionDenied => libc::EPERM,
        ResourceExhausted => errno::ELIMIT,
        Unimplemented => errno::ENOMETHOD,
        Unauthenticated => errno::ERPCAUTH,
        Unknown | NotFound | FailedPrecondition | Aborted | OutOfRange | Internal | Unavailable
        | DataLoss => errno::EINTERNAL,
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

    #[test]
    fn brpc_inverse_mapping() {
        for code in 0..17 {
            assert_eq!(GrpcStatus::from_code(code).map(|s| s as u32), Some(code));
        }
        assert_eq!(GrpcStatus::from_code(17), None);
        assert_eq!(error_code_of(GrpcStatus::ResourceExhausted), errno::ELIMIT);
        assert_eq!(error_code_of(GrpcStatus::Unimplemented), errno::ENOMETHOD);
        assert_eq!(
            error_code_of(GrpcStatus::DeadlineExceeded),
            errno::ERPCTIMEDOUT
        );
        assert_eq!(error_code_of(GrpcStatus::Unavailable), errno::EINTERNAL);
    }
}
