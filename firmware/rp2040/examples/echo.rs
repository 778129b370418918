//! The feasibility firmware behind tests/rig-emu's Phase A check: the rig's USB
//! identity, unique-id serial and interrupt receipt stamps, but a CDC-ACM port
//! that echoes what it receives (a packet starting `STAMP` is answered with its
//! receipt stamp and the time the task saw it), and the heartbeat blink on GP25.
//! It measures the emulated transport alone. Not for labs: they flash the rig
//! firmware (src/main.rs).

#![no_std]
#![no_main]

#[path = "../src/ident.rs"]
mod ident;
#[path = "../src/stamp.rs"]
mod stamp;

use core::fmt::Write as _;

use embassy_executor::Spawner;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::USB;
use embassy_rp::usb::{Driver, InterruptHandler};
use embassy_rp::{bind_interrupts, pac};
use embassy_time::Timer;
use embassy_usb::class::cdc_acm::{CdcAcmClass, State};
use embassy_usb::driver::EndpointError;
use embassy_usb::{Builder, Config, UsbDevice};
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    USBCTRL_IRQ => stamp::UsbStamp, InterruptHandler<USB>;
});

const VID: u16 = 0x1209;
const PID: u16 = 0x000e;

type UsbDrv = Driver<'static, USB>;

#[embassy_executor::main(
    executor = "embassy_rp::executor::Executor",
    entry = "cortex_m_rt::entry"
)]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());

    let serial = ident::read_serial(p.FLASH);
    static SERIAL: StaticCell<[u8; 16]> = StaticCell::new();
    let serial_str: &'static str = serial.write_str(SERIAL.init([0; 16]));

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
    echo(class).await
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

struct Line {
    buf: [u8; 64],
    len: usize,
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        Ok(())
    }
}

async fn echo(mut class: CdcAcmClass<'static, UsbDrv>) -> ! {
    let mut buf = [0u8; 64];
    loop {
        class.wait_connection().await;
        stamp::clear();
        loop {
            let n = match class.read_packet(&mut buf).await {
                Ok(n) => n,
                Err(EndpointError::Disabled) => break,
                Err(EndpointError::BufferOverflow) => continue,
            };
            let seen = stamp::now_us();
            let rx = stamp::pop().unwrap_or(seen);
            let r = if buf[..n].starts_with(b"STAMP") {
                let mut line = Line {
                    buf: [0; 64],
                    len: 0,
                };
                let _ = writeln!(line, "STAMP {} {} 0", rx, seen);
                class.write_packet(&line.buf[..line.len]).await
            } else {
                class.write_packet(&buf[..n]).await
            };
            if r.is_err() {
                break;
            }
        }
    }
}

/// Last line of defence: any panic resets the chip through the watchdog, which
/// also leaves the reason in WATCHDOG.REASON for the next boot.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    pac::WATCHDOG.ctrl().write(|w| w.set_trigger(true));
    loop {
        cortex_m::asm::nop();
    }
}
