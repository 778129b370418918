//! The kernel calls the host backends share on a device node's file
//! descriptor: ioctl request numbers, an ioctl that is retried when a signal
//! interrupts it, and waiting for a node to become readable.
//!
//! Owns those three and nothing else: what a request means and what its
//! struct holds are the backend's (`hidraw`, `v4l2`). It must not know any
//! device class, and imports nothing of the crate.

use std::os::fd::RawFd;

/// `_IOC` of linux/ioctl.h (the asm-generic layout of x86, ARM and RISC-V):
/// the direction in bits 30–31, the argument's size in bits 16–29, the
/// driver's type letter in bits 8–15 and the request number in bits 0–7.
const fn ioc(dir: u64, ty: u8, nr: u8, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}

/// `_IOW(ty, nr, T)`: the kernel reads a `T`.
pub const fn iow<T>(ty: u8, nr: u8) -> u64 {
    ioc(1, ty, nr, std::mem::size_of::<T>())
}

/// `_IOR(ty, nr, T)`: the kernel writes a `T`.
pub const fn ior<T>(ty: u8, nr: u8) -> u64 {
    ioc(2, ty, nr, std::mem::size_of::<T>())
}

/// `_IOWR(ty, nr, T)`: the kernel reads and writes a `T`.
pub const fn iowr<T>(ty: u8, nr: u8) -> u64 {
    ioc(3, ty, nr, std::mem::size_of::<T>())
}

/// Issue request `req` with `arg`, again while a signal interrupts it.
/// `arg` must be the struct `req` reads or writes (its size is encoded in
/// `req`, see [`ior`]).
pub fn ioctl<T>(fd: RawFd, req: u64, arg: &mut T) -> std::io::Result<()> {
    loop {
        // SAFETY: `arg` is the struct the request reads and writes.
        let r = unsafe { libc::ioctl(fd, req as _, arg as *mut T) };
        if r >= 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Wait up to `timeout_ms` for `fd` to be readable: its `revents` when
/// poll says something happened, `None` when the time ran out or a signal
/// interrupted the wait (the caller looks again).
pub fn poll_in(fd: RawFd, timeout_ms: i32) -> std::io::Result<Option<libc::c_short>> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r > 0 {
        return Ok(Some(pfd.revents));
    }
    if r == 0 {
        return Ok(None);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::Interrupted {
        Ok(None)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests hidraw and v4l2 issue, with the sizes of their structs
    /// (each module asserts its struct's size), come out as the kernel
    /// headers' macros give them.
    #[test]
    fn requests_are_encoded_as_linux_ioctl_h_does() {
        // linux/hidraw.h: HIDIOCGRDESCSIZE, HIDIOCGRDESC, HIDIOCGRAWINFO.
        assert_eq!(ior::<libc::c_int>(b'H', 0x01), 0x8004_4801);
        assert_eq!(ior::<[u8; 4100]>(b'H', 0x02), 0x9004_4802);
        assert_eq!(ior::<[u8; 8]>(b'H', 0x03), 0x8008_4803);
        // linux/videodev2.h: VIDIOC_REQBUFS, _QUERYBUF, _QBUF, _DQBUF,
        // _STREAMON, _STREAMOFF.
        assert_eq!(iowr::<[u8; 20]>(b'V', 8), 0xC014_5608);
        assert_eq!(iowr::<[u8; 88]>(b'V', 9), 0xC058_5609);
        assert_eq!(iowr::<[u8; 88]>(b'V', 15), 0xC058_560F);
        assert_eq!(iowr::<[u8; 88]>(b'V', 17), 0xC058_5611);
        assert_eq!(iow::<libc::c_int>(b'V', 18), 0x4004_5612);
        assert_eq!(iow::<libc::c_int>(b'V', 19), 0x4004_5613);
    }

    #[test]
    fn a_pipe_with_data_polls_readable_and_an_empty_one_times_out() {
        let mut fds = [0; 2];
        // SAFETY: two ints for the pipe's ends.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (r, w) = (fds[0], fds[1]);
        assert_eq!(poll_in(r, 0).unwrap(), None);
        // SAFETY: one byte from a valid buffer.
        assert_eq!(unsafe { libc::write(w, b"x".as_ptr().cast(), 1) }, 1);
        let revents = poll_in(r, 1000).unwrap().unwrap();
        assert_ne!(revents & libc::POLLIN, 0);
        // SAFETY: both ends are ours.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
    }
}
