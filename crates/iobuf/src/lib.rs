//! fibrpc-iobuf: a zero-copy chain of references into refcounted blocks
//! (bRPC's `butil::IOBuf`).
