//! `prost` encodes straight into block tails through `IOBufAppender`
//! (`BufMut`) and decodes straight out of an `IOBuf` (`Buf`), including a
//! message split across refs.

use bytes::Bytes;
use fibrpc_iobuf::{IOBuf, IOBufAppender};
use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
struct EchoRequest {
    #[prost(string, tag = "1")]
    message: String,
    #[prost(bytes = "bytes", tag = "2")]
    payload: Bytes,
    #[prost(uint64, repeated, tag = "3")]
    ids: Vec<u64>,
}

#[test]
fn encode_into_appender_and_decode_from_iobuf() {
    let req = EchoRequest {
        message: "hello fibrpc".into(),
        payload: Bytes::from(vec![0xab; 20_000]),
        ids: (0..100).collect(),
    };
    let mut buf = IOBuf::new();
    buf.append(b"HDR:");
    {
        let mut w = IOBufAppender::new(&mut buf);
        req.encode(&mut w).unwrap();
    }
    assert_eq!(buf.len(), 4 + req.encoded_len());
    // Spans several 8 KiB blocks.
    assert!(buf.backing_block_num() > 2);
    assert_eq!(buf.to_vec()[4..], req.encode_to_vec()[..]);

    buf.pop_front(4);
    let got = EchoRequest::decode(&mut buf).unwrap();
    assert_eq!(got, req);
    assert!(buf.is_empty());
}
