//! The rig protocol against its document (golden frames), against corruption
//! (resynchronisation, counters, random bytes) and the sessions' bookkeeping.

use certlab::station::rig::codec::{
    decode_frame, encode_frame, raw_frame, sensor, stimulus_chunks, Decoder, ErrorCode, Frame,
    FrameError, HelloReply, Message, MAX_ENCODED_LEN, MAX_FRAME_LEN, MAX_HOST_FRAME_LEN,
    PROTOCOL_VERSION,
};
use certlab::station::rig::session::{Event, HandshakeState, HostSession, RigSession};
use certlab::station::rig::StimulusStore;
use certlab::time::{HostTime, RigTime};
use proptest::prelude::*;

const DOC: &str = include_str!("../docs/rig-protocol.md");

fn hello_reply() -> HelloReply {
    HelloReply {
        sensors: 0x1F,
        loopback_delay_us: 500,
        stimulus_capacity: 131_072,
        mic_sample_rates: vec![16_000, 48_000],
        kind: "certlab-rig".into(),
        firmware: "1.0.0".into(),
        serial: "RIG-0001".into(),
    }
}

/// The examples of docs/rig-protocol.md: name, sequence number, message.
fn examples() -> Vec<(&'static str, u16, Message)> {
    vec![
        ("Hello", 0, Message::Hello),
        ("SyncRequest", 1, Message::SyncRequest { cookie: 7 }),
        (
            "StimulusData",
            2,
            Message::StimulusData {
                id: 1,
                total: 4,
                offset: 0,
                samples: vec![0, 16_384, -16_384, 32_767],
            },
        ),
        (
            "Play",
            3,
            Message::Play {
                at: RigTime(2_500_000),
                sample_rate: 48_000,
                id: 1,
            },
        ),
        (
            "FlashLed",
            4,
            Message::FlashLed {
                at: RigTime(3_000_000),
                duration_us: 50_000,
            },
        ),
        (
            "PressButton",
            5,
            Message::PressButton {
                at: RigTime(3_500_000),
                hold_us: 100_000,
            },
        ),
        ("SetLoopback", 6, Message::SetLoopback { on: true }),
        (
            "StreamMic",
            7,
            Message::StreamMic {
                sample_rate: 48_000,
                on: true,
            },
        ),
        (
            "StreamPhotodiode",
            8,
            Message::StreamPhotodiode {
                sample_rate: 10_000,
                on: true,
            },
        ),
        ("HelloReply", 0, Message::HelloReply(hello_reply())),
        (
            "SyncReply",
            1,
            Message::SyncReply {
                cookie: 7,
                rig: RigTime(1_234_567),
            },
        ),
        ("Ack", 2, Message::Ack { seq: 3 }),
        (
            "Error",
            3,
            Message::Error {
                seq: 4,
                code: ErrorCode::Late,
                message: "late by 1200 us".into(),
            },
        ),
        (
            "Onset",
            4,
            Message::Onset {
                sensor: sensor::PHOTODIODE,
                at: RigTime(3_000_120),
            },
        ),
        (
            "SampleBlock",
            5,
            Message::SampleBlock {
                stream: sensor::MIC,
                seq: 42,
                t_first: RigTime(2_500_000),
                samples: vec![0, 1000, -1000, 32_767],
            },
        ),
        (
            "Heartbeat",
            6,
            Message::Heartbeat {
                now: RigTime(10_000_000),
            },
        ),
        (
            "Unknown",
            7,
            Message::Unknown {
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

fn encoded(seq: u16, m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(seq, &mut out);
    out
}

#[test]
fn doc_examples_match_the_codec() {
    let frames = doc_blocks("frame");
    let raws = doc_blocks("raw");
    let ex = examples();
    let mut fresh = String::new();
    for (name, seq, m) in &ex {
        let enc = encoded(*seq, m);
        let raw = raw_frame(*seq, m);
        fresh += &format!(
            "```raw {name}\n{}\n```\n```frame {name}\n{}\n```\n",
            hex(&raw),
            hex(&enc)
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
        let (frame, raw) = (find(&frames, name), find(&raws, name));
        assert_eq!(
            encoded(*seq, m),
            frame,
            "frame of {name} differs from the document; the codec's:\n{fresh}"
        );
        assert_eq!(
            raw_frame(*seq, m),
            raw,
            "raw frame of {name}; the codec's:\n{fresh}"
        );
        let f = decode_frame(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            f,
            Frame {
                version: PROTOCOL_VERSION,
                seq: *seq,
                message: m.clone()
            },
            "{name}"
        );
        assert!(frame.len() <= MAX_ENCODED_LEN + 1);
        if m.is_from_host() {
            assert!(raw.len() <= MAX_HOST_FRAME_LEN, "{name}");
        }
    }
}

fn drain(d: &mut Decoder) -> Vec<Result<Frame, FrameError>> {
    std::iter::from_fn(|| d.next()).collect()
}

fn ok_messages(rs: &[Result<Frame, FrameError>]) -> Vec<Message> {
    rs.iter()
        .filter_map(|r| r.as_ref().ok().map(|f| f.message.clone()))
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
    let mut rs = Vec::new();
    for x in &s {
        d.push(std::slice::from_ref(x));
        rs.extend(drain(&mut d));
    }
    assert_eq!(ok_messages(&rs), vec![a, c]);
    let st = d.stats();
    assert_eq!(st.frames, 2);
    assert_eq!(st.dropped(), 3, "{st:?}");
    assert_eq!(rs.iter().filter(|r| r.is_err()).count(), 3);
    // 3 and 2 garbage bytes, and the spliced frame (its delimiter replaced by the extra byte).
    assert_eq!(st.skipped_bytes, 3 + 2 + encoded(2, &b).len() as u64);
}

#[test]
fn flipped_bits_fail_the_crc_and_the_next_frame_decodes() {
    let m = Message::SampleBlock {
        stream: sensor::MIC,
        seq: 1,
        t_first: RigTime(10),
        samples: (1..=256).map(|i| i as i16 * 3).collect(),
    };
    let good = encoded(0, &m);
    let mut crc_failures = 0;
    for i in 0..good.len() - 1 {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            let mut d = Decoder::new();
            d.push(&bad);
            d.push(&encoded(1, &Message::Heartbeat { now: RigTime(5) }));
            let rs = drain(&mut d);
            // The corrupted frame never decodes as a frame; the next one always does.
            let msgs = ok_messages(&rs);
            assert_eq!(
                msgs.last(),
                Some(&Message::Heartbeat { now: RigTime(5) }),
                "byte {i} bit {bit}"
            );
            assert!(!msgs.contains(&m), "byte {i} bit {bit}");
            crc_failures += d.stats().bad_crc;
        }
    }
    assert!(crc_failures > 0);
}

#[test]
fn a_truncated_frame_and_a_frame_without_room_for_a_crc_are_dropped() {
    let mut d = Decoder::new();
    let f = encoded(0, &Message::Heartbeat { now: RigTime(5) });
    d.push(&f[..f.len() - 3]);
    d.push(&[0]);
    d.push(&[0x03, 0x01, 0x02, 0x00]); // decodes to 2 bytes: shorter than header + CRC
    let rs = drain(&mut d);
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| r.is_err()));
    assert_eq!(d.stats().truncated, 1, "{:?}", d.stats());
}

#[test]
fn a_known_type_with_a_short_payload_is_malformed_and_counted() {
    let mut out = Vec::new();
    // A SyncReply whose payload is an Unknown's: too short for cookie and time.
    encode_frame(
        PROTOCOL_VERSION,
        0,
        &Message::Unknown {
            msg_type: 0x82,
            payload: vec![1, 2],
        },
        &mut out,
    );
    let mut d = Decoder::new();
    d.push(&out);
    assert_eq!(
        drain(&mut d),
        vec![Err(FrameError::Malformed { msg_type: 0x82 })]
    );
    assert_eq!(d.stats().malformed, 1);
}

#[test]
fn unknown_message_types_are_reported_and_skipped() {
    let mut s = encoded(
        0,
        &Message::Unknown {
            msg_type: 0xC3,
            payload: vec![0, 0, 7, 0],
        },
    );
    s.extend(encoded(1, &Message::Ack { seq: 4 }));
    let mut host = HostSession::new();
    let ev = host.receive(&s, HostTime(0));
    assert!(
        matches!(ev[..], [Event::Unknown(0xC3), Event::Ack(4)]),
        "{ev:?}"
    );
}

#[test]
fn oversize_input_is_dropped_with_bounded_memory() {
    let mut d = Decoder::new();
    for _ in 0..100 {
        d.push(&[0x11; 1000]);
        let _ = drain(&mut d);
        assert!(d.partial_len() <= MAX_ENCODED_LEN);
    }
    assert_eq!(d.stats().too_long, 1);
    d.push(&[0]);
    d.push(&encoded(0, &Message::Hello));
    assert_eq!(ok_messages(&drain(&mut d)), vec![Message::Hello]);
}

// ---------------------------------------------------------------- sessions

fn handshaken() -> (HostSession, RigSession) {
    let mut host = HostSession::new();
    let mut rig = RigSession::new();
    let cmds = rig.receive(&host.handshake(HostTime(0)));
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].message, Message::Hello);
    let ev = host.receive(
        &rig.reply(&Message::HelloReply(hello_reply())),
        HostTime(10),
    );
    assert!(matches!(ev[..], [Event::HandshakeDone { .. }]), "{ev:?}");
    (host, rig)
}

#[test]
fn handshake_gives_the_rig_info() {
    let (host, _) = handshaken();
    let info = host.rig_info().expect("handshake done");
    assert_eq!(info.kind, "certlab-rig");
    assert_eq!(info.serial, "RIG-0001");
    assert_eq!(info.firmware, "1.0.0");
    assert_eq!(info.protocol, 1);
    assert_eq!(info.mic_sample_rates, vec![16_000, 48_000]);
    assert_eq!(info.loopback_delay_us, 500);
}

#[test]
fn another_protocol_version_is_a_mismatch() {
    let mut host = HostSession::new();
    let mut rig = RigSession::with_version(2);
    let cmds = rig.receive(&host.handshake(HostTime(0)));
    assert_eq!(cmds[0].version, 1);
    let mut bytes = rig.reply(&Message::HelloReply(hello_reply()));
    bytes.extend(rig.reply(&Message::Heartbeat { now: RigTime(1) }));
    let ev = host.receive(&bytes, HostTime(5));
    match &ev[..] {
        [Event::VersionMismatch { rig, host: h }] => assert_eq!(
            Event::mismatch_text(*rig, *h),
            "rig speaks protocol 2, certlab speaks 1"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(host.state(), &HandshakeState::Mismatch { rig: 2 });
    assert!(host.rig_info().is_none());
}

#[test]
fn sync_exchanges_pair_send_times_by_cookie() {
    let (mut host, mut rig) = handshaken();
    let b1 = host.send_sync(HostTime(1_000));
    let b2 = host.send_sync(HostTime(2_000));
    let mut cmds = rig.receive(&[b1, b2].concat());
    assert_eq!(cmds.len(), 2);
    // The rig answers the second first.
    cmds.reverse();
    let mut replies = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        let Message::SyncRequest { cookie } = c.message else {
            panic!("{c:?}")
        };
        replies.push(rig.reply(&Message::SyncReply {
            cookie,
            rig: RigTime(500 + i as u64),
        }));
    }
    let ev = host.receive(&replies[0], HostTime(2_600));
    let Event::SyncExchange(x) = ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (x.host_send, x.rig, x.host_recv),
        (HostTime(2_000), RigTime(500), HostTime(2_600))
    );
    let ev = host.receive(&replies[1], HostTime(3_000));
    let Event::SyncExchange(x) = ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (x.host_send, x.rig, x.host_recv),
        (HostTime(1_000), RigTime(501), HostTime(3_000))
    );
    // A duplicate reply matches nothing.
    assert!(host.receive(&replies[1], HostTime(3_100)).is_empty());
    assert_eq!(host.stale_replies(), 1);
}

#[test]
fn commands_are_acked_or_refused_by_sequence() {
    let (mut host, mut rig) = handshaken();
    let (s1, b1) = host.send_command(
        &Message::FlashLed {
            at: RigTime(100),
            duration_us: 1000,
        },
        HostTime(50),
    );
    let (s2, b2) = host.send_command(&Message::SetLoopback { on: true }, HostTime(60));
    assert_ne!(s1, s2);
    let cmds = rig.receive(&[b1, b2].concat());
    assert_eq!(cmds.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![s1, s2]);
    assert_eq!(host.unanswered(HostTime(55)), vec![s1]);
    let mut back = rig.error(s1, ErrorCode::Late, "late by 3 us");
    back.extend(rig.ack(s2));
    let ev = host.receive(&back, HostTime(70));
    match &ev[..] {
        [Event::RigError { seq, code, msg }, Event::Ack(a)] => {
            assert_eq!(
                (*seq, *code, msg.as_str(), *a),
                (s1, ErrorCode::Late, "late by 3 us", s2)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(host.unanswered(HostTime(1_000)).is_empty());
}

#[test]
fn sample_blocks_become_blocks_and_corruption_is_reported() {
    let (mut host, mut rig) = handshaken();
    let samples: Vec<i16> = (0..256).map(|i| (i as i16 - 128) * 256).collect();
    let mut bytes = rig.reply(&Message::SampleBlock {
        stream: sensor::MIC,
        seq: 9,
        t_first: RigTime(1_500),
        samples: samples.clone(),
    });
    let mut bad = rig.reply(&Message::Heartbeat { now: RigTime(3) });
    bad[2] ^= 0x10;
    bytes.extend(bad);
    let ev = host.receive(&bytes, HostTime(0));
    match &ev[..] {
        [Event::Block { stream, block }, Event::Corrupt(1)] => {
            assert_eq!(*stream, sensor::MIC);
            assert_eq!(
                (block.seq, block.t_first_ns, block.len),
                (9, 1_500_000, 256)
            );
            assert!(!block.corrupt);
            assert_eq!(block.data[0], -1.0);
            assert_eq!(block.data[255], 127.0 * 256.0 / 32768.0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(host.rig_frames_lost(), 0);
    // The next good frame shows the lost one in the rig's sequence numbers.
    host.receive(
        &rig.reply(&Message::Heartbeat { now: RigTime(4) }),
        HostTime(1),
    );
    assert_eq!(host.rig_frames_lost(), 1);
}

#[test]
fn stimulus_upload_in_chunks_reassembles() {
    let samples: Vec<i16> = (0..1000).map(|i| (i * 31) as i16).collect();
    let mut host = HostSession::new();
    let mut rig = RigSession::new();
    let mut store = StimulusStore::new(4096);
    for m in stimulus_chunks(3, &samples) {
        let (_, bytes) = host.send_command(&m, HostTime(0));
        assert!(bytes.len() <= MAX_HOST_FRAME_LEN + 4);
        for c in rig.receive(&bytes) {
            let Message::StimulusData {
                id,
                total,
                offset,
                samples,
            } = c.message
            else {
                panic!()
            };
            store.chunk(id, total, offset, &samples).unwrap();
        }
    }
    assert_eq!(store.get(3), Some(&samples[..]));
    assert_eq!(
        store.chunk(4, 5000, 0, &[]),
        Err(ErrorCode::BufferFull),
        "over capacity"
    );
    assert_eq!(store.chunk(3, 1000, 7, &[1]), Err(ErrorCode::BadParameter));
}

// ---------------------------------------------------------------- properties

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Hello),
        any::<u32>().prop_map(|cookie| Message::SyncRequest { cookie }),
        (any::<u32>(), any::<u64>()).prop_map(|(cookie, r)| Message::SyncReply {
            cookie,
            rig: RigTime(r)
        }),
        any::<u16>().prop_map(|seq| Message::Ack { seq }),
        (any::<u16>(), 1u16..8, "[a-z ]{0,40}").prop_map(|(seq, c, message)| Message::Error {
            seq,
            code: ErrorCode::from_code(c),
            message
        }),
        (any::<u8>(), any::<u64>()).prop_map(|(sensor, at)| Message::Onset {
            sensor,
            at: RigTime(at)
        }),
        (
            any::<u32>(),
            any::<u64>(),
            prop::collection::vec(any::<i16>(), 0..=256)
        )
            .prop_map(|(seq, t, samples)| Message::SampleBlock {
                stream: 0,
                seq,
                t_first: RigTime(t),
                samples
            }),
        (
            any::<u16>(),
            any::<u32>(),
            prop::collection::vec(any::<i16>(), 0..=240)
        )
            .prop_map(|(id, offset, samples)| Message::StimulusData {
                id,
                total: u32::MAX,
                offset,
                samples
            }),
        (0x90u8..0xff, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(msg_type, payload)| Message::Unknown { msg_type, payload }),
    ]
}

#[derive(Debug, Clone)]
enum Piece {
    Frame(Message),
    /// Garbage bytes between frames (may contain 0x00).
    Garbage(Vec<u8>),
    /// A frame with garbage spliced in at a position (a fraction of its length).
    Spliced(Message, f64, Vec<u8>),
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
        let mut host = HostSession::new();
        let mut rig = RigSession::new();
        for c in bytes.chunks(split) {
            d.push(c);
            let _ = drain(&mut d);
            prop_assert!(d.partial_len() <= MAX_ENCODED_LEN);
            let _ = host.receive(c, HostTime(0));
            let _ = rig.receive(c);
        }
        let _ = decode_frame(&bytes);
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
                        expected.push(Frame { version: PROTOCOL_VERSION, seq, message: m.clone() });
                    }
                    stream.extend(encoded(seq, m));
                }
                Piece::Garbage(g) => stream.extend(g),
                Piece::Spliced(m, at, g) => {
                    let mut f = encoded(seq, m);
                    let k = ((f.len() - 1) as f64 * at) as usize;
                    f.splice(k..k, g.iter().copied());
                    stream.extend(f);
                }
            }
        }
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for c in stream.chunks(split) {
            d.push(c);
            got.extend(drain(&mut d).into_iter().filter_map(Result::ok));
            prop_assert!(d.partial_len() <= MAX_ENCODED_LEN);
        }
        // Every intact frame decodes, in order (garbage may add nothing else but
        // frames it happens to form; with CRC-32 that does not happen here).
        let mut it = got.iter();
        for e in &expected {
            prop_assert!(it.any(|g| g == e), "missing {:?}", e);
        }
        prop_assert_eq!(got.len() as u64, d.stats().frames);
    }

    #[test]
    fn every_message_round_trips(m in arb_message(), seq in any::<u16>()) {
        let f = encoded(seq, &m);
        prop_assert!(f.len() <= MAX_ENCODED_LEN + 1);
        prop_assert!(raw_frame(seq, &m).len() <= MAX_FRAME_LEN);
        prop_assert_eq!(f.iter().position(|b| *b == 0), Some(f.len() - 1));
        prop_assert_eq!(decode_frame(&f), Ok(Frame { version: PROTOCOL_VERSION, seq, message: m }));
    }
}
