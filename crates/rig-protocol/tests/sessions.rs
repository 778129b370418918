//! The host's and the rig's sessions driven through byte vectors and times:
//! the handshake, clock-sync pairing, retries with the same seq, duplicate
//! suppression, typed refusals, the restart rule, timers, and output order.

use proptest::prelude::*;
use rig_protocol::codec::{msg_type, sensor, Decoder, Rates, MAX_WIRE_LEN};
use rig_protocol::{
    Command, CommandError, ErrorCode, HelloReply, HostEvent, HostSession, HostTime, LinkState,
    Message, Refusal, RigConfig, RigHandler, RigSession, RigTime, Samples,
};

/// A rig's hardware that records what it was told to do.
#[derive(Default)]
struct Hw {
    done: Vec<String>,
    sessions: u32,
    /// Refuse the next command with this.
    refuse: Option<Refusal>,
}

const RATES: [u32; 2] = [16_000, 48_000];

impl RigHandler for Hw {
    fn hello(&self) -> HelloReply<'_> {
        HelloReply {
            sensors: rig_protocol::rig::ALL_SENSORS,
            loopback_delay_us: 500,
            stimulus_capacity: 65_536,
            mic_sample_rates: Rates::List(&RATES),
            kind: "test rig",
            firmware: "9.9.9",
            serial: "T-1",
        }
    }
    fn new_session(&mut self) {
        self.sessions += 1;
    }
    fn command(&mut self, cmd: Command<'_>, now: RigTime) -> Result<(), Refusal> {
        if let Some(r) = self.refuse.take() {
            return Err(r);
        }
        self.done.push(format!("{cmd:?} @{}", now.0));
        Ok(())
    }
}

/// Everything the rig would send now.
fn rig_out(rig: &mut RigSession) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let n = rig.poll_transmit(&mut buf);
        if n == 0 {
            return all;
        }
        all.extend_from_slice(&buf[..n]);
    }
}

/// Everything the host would send now, stamped `now`.
fn host_out(host: &mut HostSession, now: i64) -> Vec<u8> {
    let mut v = Vec::new();
    while host.poll_transmit(HostTime(now), &mut v) {}
    v
}

fn events(host: &mut HostSession) -> Vec<HostEvent> {
    std::iter::from_fn(|| host.poll_event()).collect()
}

/// A host and a rig that have shaken hands at host time 0 / rig time 1000.
fn connected() -> (HostSession, RigSession, Hw) {
    let mut host = HostSession::default();
    let mut rig = RigSession::default();
    let mut hw = Hw::default();
    host.connect();
    let hello = host_out(&mut host, 0);
    assert_eq!(hello[0], 0, "Hello is led by a delimiter");
    rig.handle_input(&hello, RigTime(1_000), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(100_000));
    match &events(&mut host)[..] {
        [HostEvent::Connected(h)] => {
            assert_eq!(
                (h.kind.as_str(), h.serial.as_str(), h.firmware.as_str()),
                ("test rig", "T-1", "9.9.9")
            );
            assert_eq!((h.protocol, h.loopback_delay_us), (1, 500));
            assert_eq!(h.mic_sample_rates, RATES);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hw.sessions, 1);
    (host, rig, hw)
}

const MS: i64 = 1_000_000;

#[test]
fn a_sync_exchange_is_stamped_when_sent_received_and_read() {
    let (mut host, mut rig, mut hw) = connected();
    let a = host.sync();
    let b = host.sync();
    let req_a = {
        let mut v = Vec::new();
        assert!(host.poll_transmit(HostTime(2_000), &mut v));
        v
    };
    let req_b = host_out(&mut host, 3_000);
    // The rig answers the second first.
    rig.handle_input(&req_b, RigTime(5_000), &mut hw);
    let rb = rig_out(&mut rig);
    rig.handle_input(&req_a, RigTime(5_500), &mut hw);
    let ra = rig_out(&mut rig);
    host.handle_input(&rb, HostTime(4_000));
    host.handle_input(&ra, HostTime(4_500));
    let ev = events(&mut host);
    let got: Vec<_> = ev
        .iter()
        .map(|e| match e {
            HostEvent::Sync { id, exchange } => (
                *id,
                exchange.host_send.0,
                exchange.rig.0,
                exchange.host_recv.0,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![(b, 3_000, 5_000, 4_000), (a, 2_000, 5_500, 4_500)]
    );
    // A duplicate reply matches nothing.
    host.handle_input(&ra, HostTime(9_000));
    assert!(events(&mut host).is_empty());
    assert_eq!(host.stats().stale_replies, 1);
    assert!(hw.done.is_empty(), "sync requests are not commands");
}

#[test]
fn a_lost_sync_request_is_replaced_and_a_late_reply_to_it_still_counts() {
    let (mut host, mut rig, mut hw) = connected();
    let id = host.sync();
    let lost = host_out(&mut host, 10 * MS);
    assert_eq!(host.poll_timeout(), Some(HostTime(160 * MS)));
    host.handle_timeout(HostTime(160 * MS));
    let second = host_out(&mut host, 161 * MS);
    assert_ne!(lost, second, "a new cookie");
    assert_eq!(host.stats().sync_retries, 1);
    // The first request was only slow: its reply arrives first and pairs.
    rig.handle_input(&lost, RigTime(170_000), &mut hw);
    rig.handle_input(&second, RigTime(171_000), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(172 * MS));
    match &events(&mut host)[..] {
        [HostEvent::Sync { id: i, exchange }] => {
            assert_eq!(*i, id);
            assert_eq!(exchange.host_send, HostTime(10 * MS));
            assert_eq!(exchange.rig, RigTime(170_000));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(host.stats().stale_replies, 1, "the second reply is stale");
    assert_eq!(host.poll_timeout(), Some(HostTime(172 * MS + 3_000 * MS)));
}

#[test]
fn a_sync_request_unanswered_four_times_fails() {
    let (mut host, _rig, _hw) = connected();
    let id = host.sync();
    let mut t = 0;
    for _ in 0..4 {
        assert!(!host_out(&mut host, t).is_empty());
        t = host.poll_timeout().unwrap().0;
        host.handle_timeout(HostTime(t));
    }
    assert_eq!(t, 4 * 150 * MS);
    assert!(host_out(&mut host, t).is_empty());
    assert_eq!(
        events(&mut host),
        vec![HostEvent::SyncFailed { id, tries: 4 }]
    );
}

#[test]
fn a_command_whose_ack_is_lost_is_resent_with_its_seq_and_executed_once() {
    let (mut host, mut rig, mut hw) = connected();
    let play = Message::FlashLed {
        at: RigTime(900_000),
        duration_us: 50_000,
    };
    let seq = host.command(&play);
    let first = host_out(&mut host, 10 * MS);
    rig.handle_input(&first, RigTime(200_000), &mut hw);
    let _lost_ack = rig_out(&mut rig);
    host.handle_timeout(HostTime(160 * MS));
    let again = host_out(&mut host, 160 * MS);
    assert_eq!(first, again, "the same frame, the same seq");
    rig.handle_input(&again, RigTime(350_000), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(161 * MS));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::CommandDone {
            seq,
            result: Ok(())
        }]
    );
    assert_eq!(hw.done.len(), 1, "{:?}", hw.done);
    assert_eq!(rig.stats().duplicates, 1);
    assert_eq!(host.stats().command_retries, 1);
    assert_eq!(host.poll_timeout(), Some(HostTime(161 * MS + 3_000 * MS)));
}

#[test]
fn a_command_unanswered_after_four_tries_is_given_up() {
    let (mut host, _rig, _hw) = connected();
    let seq = host.command(&Message::SetLoopback { on: true });
    let mut sent = 0;
    let mut t = 0;
    loop {
        let b = host_out(&mut host, t);
        if b.is_empty() {
            break;
        }
        sent += 1;
        t = host.poll_timeout().unwrap().0;
        host.handle_timeout(HostTime(t));
    }
    assert_eq!((sent, t), (4, 600 * MS));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::CommandDone {
            seq,
            result: Err(CommandError::Unanswered { tries: 4 })
        }]
    );
}

#[test]
fn refusals_reach_the_host_typed_and_a_command_for_the_past_is_late() {
    let (mut host, mut rig, mut hw) = connected();
    let late = host.command(&Message::Play {
        at: RigTime(4_000),
        sample_rate: 48_000,
        id: 1,
    });
    hw.refuse = None;
    rig.handle_input(&host_out(&mut host, 0), RigTime(5_200), &mut hw);
    hw.refuse = Some(Refusal::new(ErrorCode::UnknownStimulus, "no stimulus 2"));
    let unknown = host.command(&Message::Play {
        at: RigTime(90_000),
        sample_rate: 48_000,
        id: 2,
    });
    rig.handle_input(&host_out(&mut host, 0), RigTime(5_300), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(MS));
    assert_eq!(
        events(&mut host),
        vec![
            HostEvent::CommandDone {
                seq: late,
                result: Err(CommandError::Refused {
                    code: ErrorCode::Late,
                    message: "late by 1200 us".into()
                })
            },
            HostEvent::CommandDone {
                seq: unknown,
                result: Err(CommandError::Refused {
                    code: ErrorCode::UnknownStimulus,
                    message: "no stimulus 2".into()
                })
            },
        ]
    );
    assert!(
        hw.done.is_empty(),
        "a late command never reaches the hardware"
    );
    assert_eq!(rig.stats().refused, 2);
}

#[test]
fn a_restarted_rig_refuses_all_but_hello_and_the_host_voids_what_was_pending() {
    let (mut host, _old_rig, mut hw) = connected();
    let seq = host.command(&Message::SetLoopback { on: true });
    let cmd = host_out(&mut host, 0);
    // The rig reboots before the command arrives: a new session.
    let mut rig = RigSession::default();
    rig.announce_restart(RigTime(10));
    rig.handle_input(&cmd, RigTime(20), &mut hw);
    // A sync request while restarted is refused too.
    let sync = Message::SyncRequest { cookie: 99 }.to_wire(500);
    rig.handle_input(&sync, RigTime(30), &mut hw);
    let out = rig_out(&mut rig);
    let codes = errors_in(&out);
    assert_eq!(
        codes,
        vec![
            (0, ErrorCode::Restarted),
            (seq, ErrorCode::Restarted),
            (500, ErrorCode::Restarted)
        ]
    );
    assert!(hw.done.is_empty());
    host.handle_input(&out, HostTime(MS));
    assert_eq!(
        events(&mut host),
        vec![
            HostEvent::CommandDone {
                seq,
                result: Err(CommandError::Restarted)
            },
            HostEvent::Restarted
        ]
    );
    assert_eq!(host.state(), &LinkState::Restarted);
    assert_eq!(host.stats().restarts, 1);
    // Until a new handshake, commands fail at once.
    let s2 = host.command(&Message::SetLoopback { on: false });
    assert_eq!(
        events(&mut host),
        vec![HostEvent::CommandDone {
            seq: s2,
            result: Err(CommandError::Restarted)
        }]
    );
    host.connect();
    rig.handle_input(&host_out(&mut host, 2 * MS), RigTime(40), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(3 * MS));
    assert!(matches!(events(&mut host)[..], [HostEvent::Connected(_)]));
    assert!(rig.greeted());
}

/// (seq, code) of every Error frame in `bytes`.
fn errors_in(bytes: &[u8]) -> Vec<(u16, ErrorCode)> {
    let mut d = Decoder::<600>::new();
    let mut rest = bytes;
    let mut out = Vec::new();
    while let Some(r) = d.decode(&mut rest) {
        if let Ok(f) = r {
            if let Message::Error { seq, code, .. } = f.message {
                out.push((seq, code));
            }
        }
    }
    out
}

/// Message types of every frame in `bytes`, in order.
fn types_in(bytes: &[u8]) -> Vec<u8> {
    let mut d = Decoder::<600>::new();
    let mut rest = bytes;
    let mut out = Vec::new();
    while let Some(r) = d.decode(&mut rest) {
        if let Ok(f) = r {
            out.push(f.message.msg_type());
        }
    }
    out
}

#[test]
fn an_announcement_before_the_handshake_is_not_a_restart() {
    let mut host = HostSession::default();
    let mut rig = RigSession::default();
    let mut hw = Hw::default();
    rig.announce_restart(RigTime(0));
    host.connect();
    let hello = host_out(&mut host, 0);
    // The announcement crosses the Hello on the wire.
    host.handle_input(&rig_out(&mut rig), HostTime(10));
    rig.handle_input(&hello, RigTime(50), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(20));
    assert!(matches!(events(&mut host)[..], [HostEvent::Connected(_)]));
    assert_eq!(host.stats().restarts, 0);
}

#[test]
fn an_unsolicited_hello_reply_is_a_restart_but_a_reply_to_a_retried_hello_is_not() {
    let mut host = HostSession::default();
    let mut rig = RigSession::default();
    let mut hw = Hw::default();
    host.connect();
    let h1 = host_out(&mut host, 0);
    host.handle_timeout(HostTime(250 * MS));
    let h2 = host_out(&mut host, 250 * MS);
    assert!(!h2.is_empty(), "the Hello is sent again");
    rig.handle_input(&h1, RigTime(1), &mut hw);
    rig.handle_input(&h2, RigTime(2), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(251 * MS));
    assert!(matches!(events(&mut host)[..], [HostEvent::Connected(_)]));
    assert_eq!(host.state(), &LinkState::Connected);
    // A third HelloReply nobody asked for: the rig restarted.
    let mut other = RigSession::default();
    other.handle_input(&Message::Hello.to_wire(9), RigTime(3), &mut hw);
    host.handle_input(&rig_out(&mut other), HostTime(300 * MS));
    assert_eq!(events(&mut host), vec![HostEvent::Restarted]);
}

#[test]
fn a_silent_rig_fails_the_handshake_after_four_hellos() {
    let mut host = HostSession::default();
    host.connect();
    let mut t = 0;
    let mut hellos = 0;
    while !host_out(&mut host, t).is_empty() {
        hellos += 1;
        t = host.poll_timeout().unwrap().0;
        host.handle_timeout(HostTime(t));
    }
    assert_eq!((hellos, t), (4, 1_000 * MS));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::HandshakeFailed { tries: 4 }]
    );
    assert_eq!(host.state(), &LinkState::Failed);
}

#[test]
fn a_rig_of_another_version_is_a_mismatch_and_refuses_version_one_commands() {
    let mut host = HostSession::default();
    let mut rig = RigSession::new(RigConfig {
        version: 2,
        ..RigConfig::default()
    });
    let mut hw = Hw::default();
    host.connect();
    rig.handle_input(&host_out(&mut host, 0), RigTime(1), &mut hw);
    let reply = rig_out(&mut rig);
    host.handle_input(&reply, HostTime(5));
    match &events(&mut host)[..] {
        [HostEvent::VersionMismatch { rig, host: h }] => assert_eq!(
            HostEvent::mismatch_text(*rig, *h),
            "rig speaks protocol 2, certlab speaks 1"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(host.state(), &LinkState::Mismatch { rig: 2 });
    assert!(host.rig().is_none());
    rig.handle_input(
        &Message::SetLoopback { on: true }.to_wire(3),
        RigTime(2),
        &mut hw,
    );
    let out = rig_out(&mut rig);
    let mut d = Decoder::<600>::new();
    let mut rest = &out[..];
    let f = d.decode(&mut rest).unwrap().unwrap();
    assert_eq!(f.version, 2);
    assert_eq!(f.message.msg_type(), msg_type::ERROR);
    assert!(hw.done.is_empty());
}

#[test]
fn the_rig_refuses_what_is_not_a_command_and_ignores_what_is_corrupt() {
    let (_host, mut rig, mut hw) = connected();
    let mut input = Message::Unknown {
        msg_type: 0x30,
        payload: &[1, 2, 3],
    }
    .to_wire(1);
    input.extend(Message::Ack { seq: 1 }.to_wire(2));
    let mut bad = Message::SetLoopback { on: true }.to_wire(3);
    bad[3] ^= 0x40;
    input.extend(bad);
    input.extend([0x55; 700]); // too long for a host frame
    input.push(0);
    rig.handle_input(&input, RigTime(10), &mut hw);
    let out = rig_out(&mut rig);
    assert_eq!(
        errors_in(&out),
        vec![(1, ErrorCode::Unsupported), (2, ErrorCode::Unsupported)]
    );
    let st = rig.stats();
    assert_eq!((st.decoder.bad_crc, st.decoder.too_long), (1, 1), "{st:?}");
    assert!(hw.done.is_empty());
}

#[test]
fn the_rig_sends_replies_ahead_of_queued_blocks_but_never_splits_a_frame() {
    let (_host, mut rig, mut hw) = connected();
    let pcm = [7i16; 256];
    for k in 0..3 {
        assert!(rig.send_block(sensor::MIC, k, RigTime(k as u64 * 5_333), &pcm, RigTime(0)));
    }
    // The first block starts going out...
    let mut buf = [0u8; 100];
    let n = rig.poll_transmit(&mut buf);
    let mut wire = buf[..n].to_vec();
    // ...then a sync request arrives.
    rig.handle_input(
        &Message::SyncRequest { cookie: 1 }.to_wire(7),
        RigTime(50),
        &mut hw,
    );
    wire.extend(rig_out(&mut rig));
    assert_eq!(
        types_in(&wire),
        vec![
            msg_type::SAMPLE_BLOCK,
            msg_type::SYNC_REPLY,
            msg_type::SAMPLE_BLOCK,
            msg_type::SAMPLE_BLOCK
        ]
    );
}

#[test]
fn a_full_output_queue_drops_blocks_and_counts_them() {
    let (mut host, mut rig, _hw) = connected();
    let pcm = [1i16; 256];
    let mut sent = 0u32;
    while rig.has_room_for_block(256) {
        assert!(rig.send_block(sensor::MIC, sent, RigTime(0), &pcm, RigTime(0)));
        sent += 1;
    }
    assert!(sent >= 4, "{sent}");
    assert!(!rig.send_block(sensor::MIC, sent, RigTime(0), &pcm, RigTime(0)));
    assert_eq!(rig.stats().events_dropped, 1);
    host.handle_input(&rig_out(&mut rig), HostTime(0));
    let blocks: Vec<u32> = events(&mut host)
        .iter()
        .filter_map(|e| match e {
            HostEvent::Block(b) => Some(b.seq),
            _ => None,
        })
        .collect();
    assert_eq!(blocks[..sent as usize], (0..sent).collect::<Vec<_>>()[..]);
}

#[test]
fn blocks_arrive_with_their_samples_and_lost_rig_frames_are_counted() {
    let (mut host, mut rig, _hw) = connected();
    let pcm: Vec<i16> = (0..256).map(|i| (i as i16 - 128) * 256).collect();
    rig.send_block(sensor::MIC, 9, RigTime(1_500), &pcm, RigTime(0));
    host.handle_input(&rig_out(&mut rig), HostTime(0));
    match &events(&mut host)[..] {
        [HostEvent::Block(b)] => {
            assert_eq!(
                (b.stream, b.seq, b.t_first, b.len),
                (0, 9, RigTime(1_500), 256)
            );
            assert_eq!(b.samples(), &pcm[..]);
        }
        other => panic!("{other:?}"),
    }
    // A frame lost on the way shows in the rig's sequence numbers.
    rig.send_onset(sensor::LED, RigTime(7), RigTime(0));
    let _lost = rig_out(&mut rig);
    rig.send_onset(sensor::LED, RigTime(8), RigTime(0));
    host.handle_input(&rig_out(&mut rig), HostTime(1));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Onset {
            sensor: sensor::LED,
            at: RigTime(8)
        }]
    );
    assert_eq!(host.stats().rig_frames_lost, 1);
}

#[test]
fn a_quiet_rig_sends_a_heartbeat_each_second_and_a_dead_one_is_reported_silent() {
    let (mut host, mut rig, mut hw) = connected();
    // The HelloReply went out at rig time 1000.
    assert_eq!(rig.poll_timeout(), Some(RigTime(1_001_000)));
    rig.handle_timeout(RigTime(1_000_999));
    assert!(rig_out(&mut rig).is_empty(), "not yet");
    rig.handle_timeout(RigTime(1_001_000));
    let hb = rig_out(&mut rig);
    assert_eq!(types_in(&hb), vec![msg_type::HEARTBEAT]);
    assert_eq!(rig.poll_timeout(), Some(RigTime(2_001_000)));
    host.handle_input(&hb, HostTime(1_000 * MS));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Heartbeat(RigTime(1_001_000))]
    );
    // Nothing more from the rig: silent 3 s after the last frame.
    assert_eq!(host.poll_timeout(), Some(HostTime(4_000 * MS)));
    host.handle_timeout(HostTime(4_000 * MS));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Silent {
            since: HostTime(1_000 * MS)
        }]
    );
    assert_eq!(host.poll_timeout(), None, "reported once");
    // A rig that was never greeted keeps quiet.
    let fresh: RigSession = RigSession::default();
    assert_eq!(fresh.poll_timeout(), None);
    let _ = &mut hw;
}

#[test]
fn the_rig_streams_nothing_to_a_host_that_has_not_greeted_it() {
    let mut rig = RigSession::default();
    assert!(!rig.send_block(sensor::MIC, 0, RigTime(0), &[1, 2, 3], RigTime(0)));
    assert!(rig_out(&mut rig).is_empty());
}

#[test]
fn unknown_types_from_the_rig_are_reported_and_skipped() {
    let (mut host, _rig, _hw) = connected();
    let mut s = Message::Unknown {
        msg_type: 0xC3,
        payload: &[0, 0, 7, 0],
    }
    .to_wire(1);
    s.extend(
        Message::Play {
            at: RigTime(1),
            sample_rate: 1,
            id: 1,
        }
        .to_wire(2),
    );
    host.handle_input(&s, HostTime(0));
    assert_eq!(
        events(&mut host),
        vec![
            HostEvent::Unknown(0xC3),
            HostEvent::Unexpected(msg_type::PLAY)
        ]
    );
}

#[test]
fn a_stimulus_uploads_in_chunks_each_acked() {
    let (mut host, mut rig, _hw) = connected();
    let mut mem = vec![0i16; 4096];
    struct Store<'m> {
        store: rig_protocol::StimulusStore<'m>,
    }
    impl RigHandler for Store<'_> {
        fn hello(&self) -> HelloReply<'_> {
            Hw::default_hello()
        }
        fn new_session(&mut self) {}
        fn command(&mut self, cmd: Command<'_>, _now: RigTime) -> Result<(), Refusal> {
            match cmd {
                Command::StimulusData {
                    id,
                    total,
                    offset,
                    samples,
                } => self
                    .store
                    .chunk(id, total, offset, &samples)
                    .map_err(|c| Refusal::new(c, "upload refused")),
                _ => Ok(()),
            }
        }
    }
    let mut hw = Store {
        store: rig_protocol::StimulusStore::new(&mut mem),
    };
    let pcm: Vec<i16> = (0..1000).map(|i| (i * 31) as i16).collect();
    let seqs: Vec<u16> = rig_protocol::stimulus_chunks(3, &pcm)
        .map(|m| host.command(&m))
        .collect();
    assert_eq!(seqs.len(), 5);
    let mut v = Vec::new();
    while host.poll_transmit(HostTime(0), &mut v) {
        assert!(v.len() <= 512 + 4, "{}", v.len());
        rig.handle_input(&v, RigTime(100), &mut hw);
        v.clear();
    }
    host.handle_input(&rig_out(&mut rig), HostTime(1));
    assert_eq!(
        events(&mut host)
            .iter()
            .filter(|e| matches!(e, HostEvent::CommandDone { result: Ok(()), .. }))
            .count(),
        5
    );
    assert_eq!(hw.store.get(3), Some(&pcm[..]));
    // An oversize upload is refused, typed.
    let big = vec![0i16; 5000];
    let s = host.command(&rig_protocol::stimulus_chunks(4, &big).next().unwrap());
    rig.handle_input(&host_out(&mut host, 2), RigTime(200), &mut hw);
    host.handle_input(&rig_out(&mut rig), HostTime(3));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::CommandDone {
            seq: s,
            result: Err(CommandError::Refused {
                code: ErrorCode::BufferFull,
                message: "upload refused".into()
            })
        }]
    );
    let _ = Samples::Pcm(&pcm);
}

impl Hw {
    fn default_hello() -> HelloReply<'static> {
        HelloReply {
            sensors: 1,
            loopback_delay_us: 0,
            stimulus_capacity: 4096,
            mic_sample_rates: Rates::List(&RATES),
            kind: "store",
            firmware: "0",
            serial: "0",
        }
    }
}

/// Deliver `bytes` with noise: garbage bursts between writes and a chance
/// of losing a whole write.
fn noisy(bytes: &[u8], rng: &mut u64, lose: bool) -> Vec<u8> {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    if lose && next() % 10 == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if next() % 10 == 0 {
        let n = next() % 12;
        out.extend((0..n).map(|_| next() as u8));
    }
    out.extend_from_slice(bytes);
    out
}

#[test]
fn commands_complete_over_a_lossy_noisy_link_by_retries_alone() {
    let (mut host, mut rig, mut hw) = connected();
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut t = 0i64;
    let mut done = 0;
    let mut failed = 0;
    for k in 0..200u32 {
        host.command(&Message::FlashLed {
            at: RigTime(1 << 40 | k as u64),
            duration_us: k,
        });
        loop {
            let out = host_out(&mut host, t);
            if !out.is_empty() {
                rig.handle_input(
                    &noisy(&out, &mut rng, true),
                    RigTime(1_000 + t as u64 / 1000),
                    &mut hw,
                );
                host.handle_input(
                    &noisy(&rig_out(&mut rig), &mut rng, true),
                    HostTime(t + 100_000),
                );
            }
            let mut finished = false;
            for e in events(&mut host) {
                if let HostEvent::CommandDone { result, .. } = e {
                    finished = true;
                    if result.is_ok() {
                        done += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
            if finished {
                break;
            }
            t = host.poll_timeout().map_or(t + MS, |d| d.0.max(t + 1));
            host.handle_timeout(HostTime(t));
        }
    }
    // A write is lost or damaged with probability about 0.19 each way, so a
    // try fails with about 0.34 and four in a row with about 1.3 %.
    assert!(done >= 190, "done {done}, failed {failed}");
    // No command ran twice, though many were sent more than once.
    let mut uniq = hw
        .done
        .iter()
        .map(|d| d.split(" @").next().unwrap().to_string())
        .collect::<Vec<_>>();
    let n = uniq.len();
    uniq.dedup();
    assert_eq!(uniq.len(), n, "a command was executed twice");
    assert!(rig.stats().duplicates > 0 && rig.stats().decoder.dropped() > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever bytes arrive, neither session panics, and the rig's output
    /// stays well-formed frames.
    #[test]
    fn random_bytes_never_panic_either_session(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        split in 1usize..600,
    ) {
        let (mut host, mut rig, mut hw) = connected();
        for (i, c) in bytes.chunks(split).enumerate() {
            rig.handle_input(c, RigTime(10_000 + i as u64), &mut hw);
            host.handle_input(c, HostTime(i as i64));
            host.handle_timeout(HostTime(i as i64 * 10 * MS));
            rig.handle_timeout(RigTime(i as u64 * 10_000));
        }
        let out = rig_out(&mut rig);
        let mut d = Decoder::<600>::new();
        let mut rest = &out[..];
        while let Some(r) = d.decode(&mut rest) {
            prop_assert!(r.is_ok());
        }
        let _ = events(&mut host);
        let mut v = Vec::new();
        while host.poll_transmit(HostTime(0), &mut v) {}
        prop_assert!(v.len() < 64 * MAX_WIRE_LEN);
    }
}
