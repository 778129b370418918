//! certlab rig firmware for the Raspberry Pi Pico (RP2040): rig protocol v1
//! (crates/rig-protocol's `RigSession`) over USB CDC-ACM, with the hardware
//! behind it:
//!
//! | pin | what |
//! |---|---|
//! | GP26 / ADC0 | reference microphone (MAX9814 output, biased mid-rail) |
//! | GP27 / ADC1 | photodiode (BPW34 through a transimpedance stage) |
//! | GP16 | PWM slice 0 A → RC low-pass → PAM8302 speaker amplifier |
//! | GP15 | LED drive (MOSFET gate) |
//! | GP14 | solenoid MOSFET gate (button actuator) |
//! | GP25 | on-board LED: heartbeat blink |
//!
//! One task owns the session and the hardware state; interrupts (USB receipt
//! stamps, TIMER alarms for the actuators and the speaker's start, DMA
//! refills) do the timing-critical parts and wake it.

#![no_std]
#![no_main]

mod actuate;
mod hw;
mod ident;
mod sampler;
mod speaker;
mod stamp;

use embassy_executor::Spawner;
use embassy_futures::select::{select3, Either3};
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::USB;
use embassy_rp::pwm::{self, Pwm};
use embassy_rp::usb::{Driver, InterruptHandler};
use embassy_rp::{bind_interrupts, pac};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Instant, Timer};
use embassy_usb::class::cdc_acm::{CdcAcmClass, Receiver, Sender, State};
use embassy_usb::driver::EndpointError;
use embassy_usb::{Builder, Config, UsbDevice};
use rig_protocol::{sensor, RigConfig, RigSession, RigTime, StimulusStore};
use static_cell::{ConstStaticCell, StaticCell};

bind_interrupts!(struct Irqs {
    USBCTRL_IRQ => stamp::UsbStamp, InterruptHandler<USB>;
    TIMER_IRQ_1 => actuate::LedAlarm;
    TIMER_IRQ_2 => actuate::SolenoidAlarm;
    TIMER_IRQ_3 => speaker::StartAlarm;
    DMA_IRQ_1 => speaker::Refill;
});

const VID: u16 = 0x1209;
const PID: u16 = 0x000e;
/// How often the main loop takes ADC samples and logged onsets.
const SERVICE_US: u64 = 1_000;
/// The session's event queue, bytes: 30 full SampleBlocks, 85 ms of both
/// 48 kHz streams (the ADC ring's length), so a USB hiccup of that long
/// loses no block.
const EVENT_QUEUE: usize = 16_384;

/// The protocol session of this rig.
pub type Session = RigSession<EVENT_QUEUE>;

/// Wakes the main loop (an actuator fired, a playback started).
pub static WAKE: Signal<CriticalSectionRawMutex, ()> = Signal::new();

type UsbDrv = Driver<'static, USB>;

static STIMULI: ConstStaticCell<[i16; hw::STIMULUS_SAMPLES]> =
    ConstStaticCell::new([0; hw::STIMULUS_SAMPLES]);
static SESSION: StaticCell<Session> = StaticCell::new();

#[embassy_executor::main(
    executor = "embassy_rp::executor::Executor",
    entry = "cortex_m_rt::entry"
)]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(clock_config());
    // Why this boot happened: a watchdog reset means the firmware restarted
    // under a host that may still hold the port (protocol: Error *restarted*).
    let restarted = pac::WATCHDOG.reason().read().0 != 0;

    let serial = ident::read_serial(p.FLASH);
    static SERIAL: StaticCell<[u8; 16]> = StaticCell::new();
    let serial_str: &'static str = serial.write_str(SERIAL.init([0; 16]));

    // Analogue inputs: pads with neither digital input nor output.
    for pin in [26usize, 27] {
        pac::PADS_BANK0.gpio(pin).write(|w| {
            w.set_ie(false);
            w.set_od(true);
        });
    }
    let _adc = embassy_rp::adc::Adc::new_blocking(p.ADC, Default::default());

    let mut pwm_cfg = pwm::Config::default();
    pwm_cfg.top = speaker::TOP;
    pwm_cfg.compare_a = speaker::SILENCE;
    let _pwm = Pwm::new_output_a(p.PWM_SLICE0, p.PIN_16, pwm_cfg);
    // The pins and alarms driven from interrupts through SIO and PAC.
    let _led = Output::new(p.PIN_15, Level::Low);
    let _solenoid = Output::new(p.PIN_14, Level::Low);
    actuate::init();
    speaker::init();
    let sampler = sampler::Sampler::start();

    let mut config = Config::new(VID, PID);
    config.manufacturer = Some("certlab");
    config.product = Some("certlab rig");
    config.serial_number = Some(serial_str);
    config.device_release = ident::BCD_DEVICE;
    config.max_power = 100;
    config.max_packet_size_0 = 64;

    static CONFIG_DESC: StaticCell<[u8; 256]> = StaticCell::new();
    static BOS_DESC: StaticCell<[u8; 64]> = StaticCell::new();
    static CONTROL_BUF: StaticCell<[u8; 64]> = StaticCell::new();
    static CDC_STATE: StaticCell<State> = StaticCell::new();

    let driver = Driver::new(p.USB, Irqs);
    // The actuators' and the speaker's start alarms (TIMER_IRQ_1..3) keep
    // the highest priority, so a USB transfer, a speaker refill or
    // embassy-time's alarm never delays a scheduled switch; those run one
    // level below (a receipt stamp may then wait for an actuator's edge,
    // at most a few µs).
    {
        use embassy_rp::interrupt::{InterruptExt, Priority};
        for irq in [
            embassy_rp::interrupt::USBCTRL_IRQ,
            embassy_rp::interrupt::DMA_IRQ_1,
            embassy_rp::interrupt::TIMER_IRQ_0,
        ] {
            irq.set_priority(Priority::P1);
        }
    }
    let mut builder = Builder::new(
        driver,
        config,
        CONFIG_DESC.init([0; 256]),
        BOS_DESC.init([0; 64]),
        &mut [],
        CONTROL_BUF.init([0; 64]),
    );
    let class = CdcAcmClass::new(&mut builder, CDC_STATE.init(State::new()), 64);
    let usb = builder.build();

    if let Ok(t) = usb_task(usb) {
        spawner.spawn(t);
    }
    if let Ok(t) = blink_task(Output::new(p.PIN_25, Level::Low)) {
        spawner.spawn(t);
    }

    let session = SESSION.init(Session::new(RigConfig::default()));
    if restarted {
        session.announce_restart(RigTime(stamp::now_us()));
    }
    let hw = hw::Hw {
        store: StimulusStore::new(STIMULI.take()),
        serial: serial_str,
        loopback: false,
        streaming: [false; 2],
        restart: [false; 2],
    };
    let (tx, rx) = class.split();
    rig_loop(session, hw, sampler, tx, rx).await
}

/// clk_sys = 120 MHz (12 MHz crystal × 120 / (6 × 2); VCO 1440 MHz), not
/// embassy-rp's 125 MHz: 120 cycles make a microsecond and 1250 a period of
/// the speaker's 96 kHz carrier, so two carrier periods are exactly one
/// 48 kHz sample and the speaker's start is a whole number of cycles after a
/// TIMER edge (speaker.rs). USB and the ADC run from the USB PLL (48 MHz), the
/// TIMER from the crystal: neither changes.
fn clock_config() -> embassy_rp::config::Config {
    let mut config = embassy_rp::config::Config::default();
    if let Some(xosc) = config.clocks.xosc.as_mut() {
        xosc.sys_pll = Some(embassy_rp::clocks::PllConfig {
            refdiv: 1,
            fbdiv: 120,
            post_div1: 6,
            post_div2: 2,
        });
    }
    config
}

#[embassy_executor::task]
async fn usb_task(mut usb: UsbDevice<'static, UsbDrv>) -> ! {
    usb.run().await
}

#[embassy_executor::task]
async fn blink_task(mut led: Output<'static>) -> ! {
    loop {
        led.set_high();
        Timer::after_millis(100).await;
        led.set_low();
        Timer::after_millis(900).await;
    }
}

/// Everything the host sends goes into the session with its receipt stamp;
/// every millisecond the ADC ring and the onset log are emptied into it;
/// whatever it wants to send is written out in 64-byte packets.
async fn rig_loop(
    session: &'static mut Session,
    mut hw: hw::Hw,
    mut sampler: sampler::Sampler,
    mut tx: Sender<'static, UsbDrv>,
    mut rx: Receiver<'static, UsbDrv>,
) -> ! {
    let mut buf = [0u8; 64];
    let mut out = [0u8; 64];
    let mut onsets = [(0u8, 0u64); 16];
    let mut next_service = stamp::now_us();
    loop {
        rx.wait_connection().await;
        stamp::clear();
        'connected: loop {
            let now = stamp::now_us();
            if now >= next_service {
                service(session, &mut hw, &mut sampler, &mut onsets, now);
                next_service = now + SERVICE_US;
            }
            session.handle_timeout(RigTime(now));
            while session.wants_transmit() {
                let n = session.poll_transmit(&mut out);
                if n == 0 {
                    break;
                }
                if tx.write_packet(&out[..n]).await.is_err() {
                    break 'connected;
                }
            }
            let wake_at = session
                .poll_timeout()
                .map_or(next_service, |t| t.0.min(next_service));
            match select3(
                rx.read_packet(&mut buf),
                Timer::at(Instant::from_micros(wake_at)),
                WAKE.wait(),
            )
            .await
            {
                Either3::First(Ok(n)) => {
                    let at = stamp::pop().unwrap_or_else(stamp::now_us);
                    session.handle_input(buf.get(..n).unwrap_or(&[]), RigTime(at), &mut hw);
                }
                Either3::First(Err(EndpointError::BufferOverflow)) => {}
                Either3::First(Err(EndpointError::Disabled)) => break 'connected,
                Either3::Second(()) | Either3::Third(()) => {}
            }
        }
    }
}

fn service(
    session: &mut Session,
    hw: &mut hw::Hw,
    sampler: &mut sampler::Sampler,
    onsets: &mut [(u8, u64); 16],
    now: u64,
) {
    let n = actuate::take_onsets(onsets);
    for &(sensor, at) in onsets.iter().take(n) {
        session.send_onset(sensor, RigTime(at), RigTime(now));
    }
    for (i, r) in hw.restart.iter_mut().enumerate() {
        if core::mem::take(r) {
            sampler.restart_stream(i);
        }
    }
    let streaming = hw.streaming;
    let mut last_mic = None;
    sampler.process(
        |ev| match ev {
            sampler::Event::Block {
                input,
                seq,
                t_first,
                samples,
            } => {
                if streaming.get(input).copied().unwrap_or(false) {
                    let stream = if input == 0 {
                        sensor::MIC
                    } else {
                        sensor::PHOTODIODE
                    };
                    session.send_block(stream, seq, RigTime(t_first), samples, RigTime(now));
                }
            }
            sampler::Event::Onset { at } => {
                session.send_onset(sensor::PHOTODIODE, RigTime(at), RigTime(now));
            }
        },
        &mut last_mic,
    );
    if hw.loopback {
        if let Some(s) = last_mic {
            speaker::set_level_if_idle(s);
        }
    }
}

/// Last line of defence: any panic resets the chip through the watchdog; the
/// next boot sees WATCHDOG.REASON and announces the restart.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    pac::WATCHDOG.ctrl().write(|w| w.set_trigger(true));
    loop {
        cortex_m::asm::nop();
    }
}
