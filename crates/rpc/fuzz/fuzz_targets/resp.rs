//! Fuzz target for the redis parsers: the first byte picks the limits, the
//! chunk size and which parser; the rest is fed in chunks, as a connection
//! delivers it. Server commands (`CommandParser`): no panic; `NeedMore`
//! consumes nothing; the commands cut from the chunked input are exactly
//! those cut from the whole input at once (resuming loses and repeats
//! nothing); a command re-encoded as RESP parses back to itself. Replies
//! (`RespParser`): no panic; chunked and whole parses agree; a reply
//! re-encodes to bytes that parse back to it.

#![no_main]

use fibrpc::redis::{CommandParse, CommandParser, RedisLimits, RespLimits, RespParse, RespParser};
use fibrpc_iobuf::IOBuf;
use libfuzzer_sys::fuzz_target;

fn commands(data: &[u8], chunk: usize, limits: &RedisLimits) -> (Vec<Vec<Vec<u8>>>, bool) {
    let mut p = CommandParser::new();
    let mut input = IOBuf::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        input.append(piece);
        loop {
            let before = input.len();
            match p.parse(&mut input, limits) {
                CommandParse::Command(args) => out.push(args.iter().map(|a| a.to_vec()).collect()),
                CommandParse::Empty => assert!(input.len() < before, "an empty command consumed nothing"),
                CommandParse::NeedMore => {
                    assert_eq!(input.len(), before, "NeedMore consumed bytes");
                    break;
                }
                CommandParse::Error(_) => return (out, true),
            }
            if input.is_empty() {
                break;
            }
        }
    }
    (out, false)
}

fn replies(data: &[u8], chunk: usize, limits: &RespLimits) -> (Vec<fibrpc::redis::RedisReply>, bool) {
    let mut p = RespParser::new();
    let mut input = IOBuf::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        input.append(piece);
        loop {
            match p.parse(&mut input, limits) {
                RespParse::Reply(r) => out.push(r),
                RespParse::NeedMore => break,
                RespParse::Error(_) => return (out, true),
            }
            if input.is_empty() {
                break;
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let chunk = (knob as usize & 0x1f) + 1;
    if knob & 0x80 == 0 {
        let limits = if knob & 0x40 != 0 {
            RedisLimits::default()
        } else {
            RedisLimits {
                max_bulk_len: 64,
                max_inline_len: 64,
                max_multibulk_len: 8,
                max_command_bytes: 256,
            }
        };
        let (chunked, chunked_err) = commands(rest, chunk, &limits);
        let (whole, whole_err) = commands(rest, rest.len().max(1), &limits);
        assert_eq!(chunked_err, whole_err);
        assert_eq!(chunked, whole);
        for cmd in &chunked {
            let mut wire = format!("*{}\r\n", cmd.len()).into_bytes();
            for a in cmd {
                wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                wire.extend_from_slice(a);
                wire.extend_from_slice(b"\r\n");
            }
            let (again, err) = commands(&wire, wire.len(), &RedisLimits::default());
            assert!(!err);
            assert_eq!(&again, &[cmd.clone()]);
        }
    } else {
        let limits = RespLimits {
            max_reply_bytes: if knob & 0x40 != 0 { 1 << 20 } else { 128 },
            ..RespLimits::default()
        };
        let (chunked, chunked_err) = replies(rest, chunk, &limits);
        let (whole, whole_err) = replies(rest, rest.len().max(1), &limits);
        assert_eq!(chunked_err, whole_err);
        assert_eq!(chunked, whole);
        for r in &chunked {
            let mut wire = IOBuf::new();
            r.encode(&mut wire);
            let (again, err) = replies(&wire.to_vec(), wire.len().max(1), &RespLimits::default());
            assert!(!err);
            assert_eq!(&again, &[r.clone()]);
        }
    }
});
