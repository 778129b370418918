//! The codec against its document (golden frames), against corruption
//! (resynchronisation, counters, random bytes) and round trips of every
//! message.

use proptest::prelude::*;
use rig_protocol::codec::{
    decode_frame_in_place, encode_frame, raw_frame, sensor, Decoder, ErrorCode, FrameError,
    HelloReply, Message, Rates, Samples, MAX_ENCODED_LEN, MAX_FRAME_LEN, MAX_HOST_FRAME_LEN,
    MAX_WIRE_LEN, PROTOCOL_VERSION,
};
use rig_protocol::RigTime;

const DOC: &str = include_str!("../../../docs/rig-protocol.md");

/// A message with owned parts, for tests that keep messages around.
#[derive(Debug, Clone, PartialEq)]
enum Owned {
    Plain(Message<'static>),
    Stimulus {
        id: u16,
        total: u32,
        offset: u32,
        samples: Vec<i16>,
    },
    Block {
        stream: u8,
        seq: u32,
        t_first: u64,
        samples: Vec<i16>,
    },
    Error {
        seq: u16,
        code: u16,
        text: String,
    },
    Hello {
        rates: Vec<u32>,
        kind: String,
    },
    Unknown {
        msg_type: u8,
        payload: Vec<u8>,
    },
}

impl Owned {
    fn msg(&self) -> Message<'_> {
        match self {
            Owned::Plain(m) => *m,
            Owned::Stimulus {
                id,
                total,
                offset,
                samples,
            } => Message::StimulusData {
                id: *id,
                total: *total,
                offset: *offset,
                samples: Samples::Pcm(samples),
            },
            Owned::Block {
                stream,
                seq,
                t_first,
                samples,
            } => Message::SampleBlock {
                stream: *stream,
                seq: *seq,
                t_first: RigTime(*t_first),
                samples: Samples::Pcm(samples),
            },
            Owned::Error { seq, code, text } => Message::Error {
                seq: *seq,
                code: ErrorCode::from_code(*code),
                message: text,
            },
            Owned::Hello { rates, kind } => Message::HelloReply(HelloReply {
                sensors: 0x1F,
                loopback_delay_us: 500,
                stimulus_capacity: 131_072,
                mic_sample_rates: Rates::List(rates),
                kind,
                firmware: "1.0.0",
                serial: "RIG-0001",
            }),
            Owned::Unknown { msg_type, payload } => Message::Unknown {
                msg_type: *msg_type,
                payload,
            },
        }
    }
}

fn encoded(seq: u16, m: &Message<'_>) -> Vec<u8> {
    m.to_wire(seq)
}

/// The examples of docs/rig-protocol.md: name, sequence number, message.
fn examples() -> Vec<(&'static str, u16, Owned)> {
    use Owned::Plain;
    vec![
        ("Hello", 0, Plain(Message::Hello)),
        ("SyncRequest", 1, Plain(Message::SyncRequest { cookie: 7 })),
        (
            "StimulusData",
            2,
            Owned::Stimulus {
                id: 1,
                total: 4,
                offset: 0,
                samples: vec![0, 16_384, -16_384, 32_767],
            },
        ),
        (
            "Play",
            3,
            Plain(Message::Play {
                at: RigTime(2_500_000),
                sample_rate: 48_000,
                id: 1,
            }),
        ),
        (
            "FlashLed",
            4,
            Plain(Message::FlashLed {
                at: RigTime(3_000_000),
                duration_us: 50_000,
            }),
        ),
        (
            "PressButton",
            5,
            Plain(Message::PressButton {
                at: RigTime(3_500_000),
                hold_us: 100_000,
            }),
        ),
        ("SetLoopback", 6, Plain(Message::SetLoopback { on: true })),
        (
            "StreamMic",
            7,
            Plain(Message::StreamMic {
                sample_rate: 48_000,
                on: true,
            }),
        ),
        (
            "StreamPhotodiode",
            8,
            Plain(Message::StreamPhotodiode {
                sample_rate: 10_000,
                on: true,
            }),
        ),
        (
            "HelloReply",
            0,
            Owned::Hello {
                rates: vec![16_000, 48_000],
                kind: "certlab-rig".into(),
            },
        ),
        (
            "SyncReply",
            1,
            Plain(Message::SyncReply {
                cookie: 7,
                rig: RigTime(1_234_567),
            }),
        ),
        ("Ack", 2, Plain(Message::Ack { seq: 3 })),
        (
            "Error",
            3,
            Owned::Error {
                seq: 4,
                code: 1,
                text: "late by 1200 us".into(),
            },
        ),
        (
            "Onset",
            4,
            Plain(Message::Onset {
                sensor: sensor::PHOTODIODE,
                at: RigTime(3_000_120),
            }),
        ),
        (
            "SampleBlock",
            5,
            Owned::Block {
                stream: sensor::MIC,
                seq: 42,
                t_first: 2_500_000,
                samples: vec![0, 1000, -1000, 32_767],
            },
        ),
        (
            "Heartbeat",
            6,
            Plain(Message::Heartbeat {
                now: RigTime(10_000_000),
            }),
        ),
        (
            "Unknown",
            7,
            Owned::Unknown {
                msg_type: 0x90,
                payload: vec![1, 2, 3],
            },
        ),
    ]
}

/// Fenced blocks tagged ```` ```KIND NAME ```` in the document, as (name, bytes).
fn doc_blocks(kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    let open = format!("```{kind} ");
    while let Some(line) = lines.next() {
        let Some(name) = line.trim().strip_prefix(&open) else {
            continue;
        };
        let mut bytes = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            for h in l.split_whitespace() {
                bytes.push(
                    u8::from_str_radix(h, 16).unwrap_or_else(|_| {
                        panic!("bad hex {h:?} in the {kind} example of {name}")
                    }),
                );
            }
        }
        out.push((name.trim().to_string(), bytes));
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| {
            c.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn doc_examples_match_the_codec() {
    let frames = doc_blocks("frame");
    let raws = doc_blocks("raw");
    let ex = examples();
    let mut fresh = String::new();
    for (name, seq, m) in &ex {
        fresh += &format!(
            "```raw {name}\n{}\n```\n```frame {name}\n{}\n```\n",
            hex(&raw_frame(*seq, &m.msg())),
            hex(&encoded(*seq, &m.msg()))
        );
    }
    let mut names: Vec<&str> = ex.iter().map(|e| e.0).collect();
    names.sort_unstable();
    for (kind, blocks) in [("frame", &frames), ("raw", &raws)] {
        let mut doc_names: Vec<&str> = blocks.iter().map(|b| b.0.as_str()).collect();
        doc_names.sort_unstable();
        assert_eq!(
            doc_names, names,
            "the document's {kind} examples and the test's differ; the codec's:\n{fresh}"
        );
    }
    let find = |blocks: &[(String, Vec<u8>)], name: &str| -> Vec<u8> {
        blocks.iter().find(|b| b.0 == name).unwrap().1.clone()
    };
    for (name, seq, m) in &ex {
        let m = m.msg();
        let (frame, raw) = (find(&frames, name), find(&raws, name));
        assert_eq!(
            encoded(*seq, &m),
            frame,
            "frame of {name} differs from the document; the codec's:\n{fresh}"
        );
        assert_eq!(
            raw_frame(*seq, &m),
            raw,
            "raw frame of {name}; the codec's:\n{fresh}"
        );
        let mut body = frame[..frame.len() - 1].to_vec();
        let f = decode_frame_in_place(&mut body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (f.version, f.seq, f.message),
            (PROTOCOL_VERSION, *seq, m),
            "{name}"
        );
        assert!(frame.len() <= MAX_ENCODED_LEN + 1);
        if m.is_from_host() {
            assert!(raw.len() <= MAX_HOST_FRAME_LEN, "{name}");
        }
    }
}

/// Every frame the decoder completes from `input` fed in pieces of `split`
/// bytes: its seq and its message re-encoded (equal messages encode equally).
fn drain(d: &mut Decoder, input: &[u8], split: usize) -> Vec<Result<(u16, Vec<u8>), FrameError>> {
    let mut out = Vec::new();
    for piece in input.chunks(split.max(1)) {
        let mut rest = piece;
        while let Some(r) = d.decode(&mut rest) {
            out.push(r.map(|f| (f.seq, encoded(f.seq, &f.message))));
        }
        assert!(d.partial_len() <= MAX_ENCODED_LEN);
    }
    out
}

fn ok(rs: &[Result<(u16, Vec<u8>), FrameError>]) -> Vec<Vec<u8>> {
    rs.iter()
        .filter_map(|r| r.as_ref().ok().map(|f| f.1.clone()))
        .collect()
}

#[test]
fn garbage_before_between_and_inside_frames_is_dropped_and_counted() {
    let a = Message::Heartbeat { now: RigTime(1) };
    let b = Message::Ack { seq: 9 };
    let c = Message::Onset {
        sensor: sensor::MIC,
        at: RigTime(77),
    };
    let mut s = vec![0x13, 0x37, 0xff, 0x00]; // garbage, then a delimiter
    s.extend(encoded(1, &a));
    s.extend([0xde, 0xad, 0x00]); // garbage between frames
    let mut inside = encoded(2, &b);
    inside.insert(3, 0x42); // garbage inside a frame
    s.extend(inside);
    s.extend(encoded(3, &c));
    let mut d = Decoder::new();
    // Byte by byte: the split of the input must not matter.
    let rs = drain(&mut d, &s, 1);
    assert_eq!(ok(&rs), vec![encoded(1, &a), encoded(3, &c)]);
    let st = d.stats();
    assert_eq!(st.frames, 2);
    assert_eq!(st.dropped(), 3, "{st:?}");
    assert_eq!(rs.iter().filter(|r| r.is_err()).count(), 3);
    // 3 and 2 garbage bytes, and the spliced frame (its delimiter replaced by the extra byte).
    assert_eq!(st.skipped_bytes, 3 + 2 + encoded(2, &b).len() as u64);
}

#[test]
fn flipped_bits_fail_the_crc_and_the_next_frame_decodes() {
    let samples: Vec<i16> = (1..=256).map(|i| i as i16 * 3).collect();
    let m = Message::SampleBlock {
        stream: sensor::MIC,
        seq: 1,
        t_first: RigTime(10),
        samples: Samples::Pcm(&samples),
    };
    let good = encoded(0, &m);
    let hb = encoded(1, &Message::Heartbeat { now: RigTime(5) });
    let mut crc_failures = 0;
    for i in 0..good.len() - 1 {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            bad.extend(&hb);
            let mut d = Decoder::new();
            let msgs = ok(&drain(&mut d, &bad, 700));
            // The corrupted frame never decodes as a frame; the next one always does.
            assert_eq!(msgs.last(), Some(&hb), "byte {i} bit {bit}");
            assert!(!msgs.contains(&good), "byte {i} bit {bit}");
            crc_failures += d.stats().bad_crc;
        }
    }
    assert!(crc_failures > 0);
}

#[test]
fn a_truncated_frame_and_a_frame_without_room_for_a_crc_are_dropped() {
    let f = encoded(0, &Message::Heartbeat { now: RigTime(5) });
    let mut s = f[..f.len() - 3].to_vec();
    s.push(0);
    s.extend([0x03, 0x01, 0x02, 0x00]); // decodes to 2 bytes: shorter than header + CRC
    let mut d = Decoder::new();
    let rs = drain(&mut d, &s, 5);
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| r.is_err()));
    assert_eq!(d.stats().truncated, 1, "{:?}", d.stats());
}

#[test]
fn a_known_type_with_a_short_payload_is_malformed_and_counted() {
    // A SyncReply whose payload is an Unknown's: too short for cookie and time.
    let mut out = [0u8; MAX_WIRE_LEN];
    let n = encode_frame(
        PROTOCOL_VERSION,
        0,
        &Message::Unknown {
            msg_type: 0x82,
            payload: &[1, 2],
        },
        &mut out,
    )
    .unwrap();
    let mut d = Decoder::new();
    assert_eq!(
        drain(&mut d, &out[..n], 64),
        vec![Err(FrameError::Malformed { msg_type: 0x82 })]
    );
    assert_eq!(d.stats().malformed, 1);
}

#[test]
fn oversize_input_is_dropped_with_bounded_memory() {
    let mut d = Decoder::new();
    for _ in 0..100 {
        let _ = drain(&mut d, &[0x11; 1000], 1000);
    }
    assert_eq!(d.stats().too_long, 1);
    let mut s = vec![0];
    s.extend(encoded(0, &Message::Hello));
    assert_eq!(ok(&drain(&mut d, &s, 3)), vec![encoded(0, &Message::Hello)]);
}

#[test]
fn a_frame_of_another_version_keeps_its_payload_uninterpreted() {
    let mut out = [0u8; MAX_WIRE_LEN];
    let n = encode_frame(2, 5, &Message::Ack { seq: 1 }, &mut out).unwrap();
    let mut d: Decoder = Decoder::new();
    let mut input = &out[..n];
    let f = d.decode(&mut input).unwrap().unwrap();
    assert_eq!(f.version, 2);
    assert_eq!(
        f.message,
        Message::Unknown {
            msg_type: 0x83,
            payload: &[1, 0]
        }
    );
}

// ---------------------------------------------------------------- properties

fn arb_message() -> impl Strategy<Value = Owned> {
    use Owned::Plain;
    prop_oneof![
        Just(Plain(Message::Hello)),
        any::<u32>().prop_map(|cookie| Plain(Message::SyncRequest { cookie })),
        (any::<u32>(), any::<u64>()).prop_map(|(cookie, r)| Plain(Message::SyncReply {
            cookie,
            rig: RigTime(r)
        })),
        any::<u16>().prop_map(|seq| Plain(Message::Ack { seq })),
        (any::<u16>(), 1u16..10, "[a-z ]{0,40}").prop_map(|(seq, code, text)| Owned::Error {
            seq,
            code,
            text
        }),
        (any::<u8>(), any::<u64>()).prop_map(|(sensor, at)| Plain(Message::Onset {
            sensor,
            at: RigTime(at)
        })),
        (
            any::<u32>(),
            any::<u64>(),
            prop::collection::vec(any::<i16>(), 0..=256)
        )
            .prop_map(|(seq, t_first, samples)| Owned::Block {
                stream: 0,
                seq,
                t_first,
                samples
            }),
        (
            any::<u16>(),
            any::<u32>(),
            prop::collection::vec(any::<i16>(), 0..=240)
        )
            .prop_map(|(id, offset, samples)| Owned::Stimulus {
                id,
                total: u32::MAX,
                offset,
                samples
            }),
        (
            prop::collection::vec(any::<u32>(), 0..=16),
            "[a-zA-Z0-9 -]{0,64}"
        )
            .prop_map(|(rates, kind)| Owned::Hello { rates, kind }),
        (0x90u8..0xff, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(msg_type, payload)| Owned::Unknown { msg_type, payload }),
    ]
}

#[derive(Debug, Clone)]
enum Piece {
    Frame(Owned),
    /// Garbage bytes between frames (may contain 0x00).
    Garbage(Vec<u8>),
    /// A frame with garbage spliced in at a position (a fraction of its length).
    Spliced(Owned, f64, Vec<u8>),
}

fn arb_piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => arb_message().prop_map(Piece::Frame),
        1 => prop::collection::vec(any::<u8>(), 1..80).prop_map(Piece::Garbage),
        1 => (arb_message(), 0.0..1.0f64, prop::collection::vec(1u8..=255, 1..8))
            .prop_map(|(m, at, g)| Piece::Spliced(m, at, g)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..3000),
        split in 1usize..700,
    ) {
        let mut d = Decoder::new();
        let _ = drain(&mut d, &bytes, split);
        let mut small = Decoder::<16>::new();
        let _ = drain_small(&mut small, &bytes);
        let mut copy = bytes.clone();
        let _ = decode_frame_in_place(&mut copy);
    }

    #[test]
    fn valid_frames_survive_garbage_around_them(
        pieces in prop::collection::vec(arb_piece(), 1..24),
        split in 1usize..900,
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let seq = i as u16;
            match p {
                Piece::Frame(m) => {
                    // Intact only if it starts right after a delimiter.
                    if stream.last().is_none_or(|b| *b == 0) {
                        expected.push(encoded(seq, &m.msg()));
                    }
                    stream.extend(encoded(seq, &m.msg()));
                }
                Piece::Garbage(g) => stream.extend(g),
                Piece::Spliced(m, at, g) => {
                    let mut f = encoded(seq, &m.msg());
                    let k = ((f.len() - 1) as f64 * at) as usize;
                    f.splice(k..k, g.iter().copied());
                    stream.extend(f);
                }
            }
        }
        let mut d = Decoder::new();
        let got = ok(&drain(&mut d, &stream, split));
        // Every intact frame decodes, in order.
        let mut it = got.iter();
        for e in &expected {
            prop_assert!(it.any(|g| g == e), "missing {:?}", e);
        }
        prop_assert_eq!(got.len() as u64, d.stats().frames);
    }

    #[test]
    fn every_message_round_trips(m in arb_message(), seq in any::<u16>()) {
        let m = m.msg();
        let f = encoded(seq, &m);
        prop_assert!(f.len() <= MAX_ENCODED_LEN + 1);
        prop_assert!(raw_frame(seq, &m).len() <= MAX_FRAME_LEN);
        prop_assert_eq!(f.iter().position(|b| *b == 0), Some(f.len() - 1));
        let mut body = f[..f.len() - 1].to_vec();
        let back = decode_frame_in_place(&mut body).unwrap();
        prop_assert_eq!((back.version, back.seq, back.message), (PROTOCOL_VERSION, seq, m));
    }
}

fn drain_small(d: &mut Decoder<16>, input: &[u8]) -> usize {
    let mut rest = input;
    let mut n = 0;
    while d.decode(&mut rest).is_some() {
        n += 1;
        assert!(d.partial_len() <= 16);
    }
    n
}
