//! Property tests: encode → parse round trips for random metas, payloads
//! and attachments, fed in random-sized chunks; parse never panics on
//! arbitrary bytes.

use fibrpc::protocol::baidu_std::compress::{compress, decompress, CompressType};
use fibrpc::protocol::baidu_std::{
    encode, parse, ChunkInfo, ParseResult, RpcMeta, RpcRequestMeta, RpcResponseMeta,
    StreamSettings, DEFAULT_MAX_BODY,
};
use fibrpc::IOBuf;
use proptest::prelude::*;

fn request() -> impl Strategy<Value = RpcRequestMeta> {
    (
        "[a-zA-Z.]{0,64}",
        "[a-zA-Z]{0,64}",
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<i64>()),
        proptest::option::of("[ -~]{0,20}"),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(
            |(s, m, log_id, trace_id, span_id, request_id, timeout_ms)| RpcRequestMeta {
                service_name: s,
                method_name: m,
                log_id,
                trace_id,
                span_id,
                parent_span_id: span_id.map(|x| x ^ 1),
                request_id,
                timeout_ms,
            },
        )
}

fn response() -> impl Strategy<Value = RpcResponseMeta> {
    (
        proptest::option::of(any::<i32>()),
        proptest::option::of("\\PC{0,30}"),
    )
        .prop_map(|(error_code, error_text)| RpcResponseMeta {
            error_code,
            error_text,
        })
}

fn meta() -> impl Strategy<Value = RpcMeta> {
    (
        proptest::option::of(request()),
        proptest::option::of(response()),
        proptest::option::of(0i32..5),
        proptest::option::of(any::<i64>()),
        proptest::option::of((any::<i64>(), any::<i64>())),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        proptest::option::of((any::<i64>(), any::<Option<bool>>(), any::<Option<bool>>())),
        proptest::collection::btree_map("[a-z]{0,8}", "\\PC{0,8}", 0..4),
        (
            proptest::option::of(0i32..4),
            proptest::option::of(0i32..2),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            any::<Option<bool>>(),
        ),
    )
        .prop_map(
            |(req, res, ct, cid, chunk, auth, ss, uf, (content, ck, ckv, cwa))| RpcMeta {
                request: req,
                response: res,
                compress_type: ct,
                correlation_id: cid,
                attachment_size: None,
                chunk_info: chunk.map(|(stream_id, chunk_id)| ChunkInfo {
                    stream_id,
                    chunk_id,
                }),
                authentication_data: auth,
                stream_settings: ss.map(|(stream_id, need_feedback, writable)| StreamSettings {
                    stream_id,
                    need_feedback,
                    writable,
                    extra_stream_ids: Vec::new(),
                }),
                user_fields: uf,
                content_type: content,
                checksum_type: ck,
                checksum_value: ckv,
                checksum_with_attachment: cwa,
            },
        )
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_parse_in_chunks(
        mut meta in meta(),
        payload in bytes(20_000),
        attachment in bytes(10_000),
        explicit_zero in any::<bool>(),
        chunks in proptest::collection::vec(1usize..4096, 1..64),
        frames in 1usize..4,
    ) {
        if !attachment.is_empty() || explicit_zero {
            meta.attachment_size = Some(attachment.len() as i32);
        }
        let payload = IOBuf::from(payload);
        let attachment = IOBuf::from(attachment);
        let mut wire = IOBuf::new();
        for _ in 0..frames {
            encode(&meta, &payload, &attachment, &mut wire).unwrap();
        }
        let wire = wire.to_vec();

        let mut input = IOBuf::new();
        let mut fed = 0;
        let mut got = 0;
        let mut chunk = chunks.iter().cycle();
        while got < frames {
            match parse(&mut input, DEFAULT_MAX_BODY) {
                ParseResult::NotEnoughData => {
                    prop_assert!(fed < wire.len(), "complete input must parse");
                    let n = (*chunk.next().unwrap()).min(wire.len() - fed);
                    input.append(&wire[fed..fed + n]);
                    fed += n;
                }
                ParseResult::Complete(f) => {
                    prop_assert_eq!(&f.meta, &meta);
                    prop_assert_eq!(&f.payload, &payload);
                    prop_assert_eq!(&f.attachment, &attachment);
                    got += 1;
                }
                ParseResult::Error(e) => prop_assert!(false, "{}", e),
            }
        }
        prop_assert_eq!(fed, wire.len());
        prop_assert!(input.is_empty());
    }

    #[test]
    fn parse_never_panics(data in bytes(300), max_body in 0usize..400) {
        let mut with_magic = b"PRPC".to_vec();
        with_magic.extend_from_slice(&data);
        for input in [data, with_magic] {
            let mut buf = IOBuf::from(input);
            for _ in 0..8 {
                match parse(&mut buf, max_body) {
                    ParseResult::Complete(_) => continue,
                    _ => break,
                }
            }
        }
    }

    #[test]
    fn compression_round_trips(ty in 0i32..5, data in bytes(50_000)) {
        let input = IOBuf::from(data);
        let c = compress(ty, &input).unwrap();
        prop_assert_eq!(decompress(ty, &c, input.len()).unwrap(), input);
        prop_assert!(CompressType::from_i32(ty).is_some());
    }

    #[test]
    fn decompress_garbage_never_panics(ty in -1i32..6, data in bytes(200)) {
        let _ = decompress(ty, &IOBuf::from(data), 1 << 16);
    }
}
