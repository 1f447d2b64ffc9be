//! The kernel clock's discipline state from `adjtimex(2)` with no modes set (a read; no
//! privilege needed), as `chronyc tracking`, `ntptime` and node_exporter's timex collector show
//! it. The call returns the clock state (`TIME_ERROR` = 5 when the clock is not synchronized)
//! and fills `struct timex`:
//!
//! ```text
//! offset 1234 (µs, or ns with STA_NANO)  freq 655360 (ppm × 2^16)  maxerror 16000 (µs)
//! esterror 500 (µs)  status 0x2001 (STA_PLL | STA_NANO)  tai 37 (s)
//! ```
//!
//! This reads the running kernel's clock whatever `HostPaths` say (a container shares its
//! host's clock).

/// `TIME_ERROR`: the clock is not synchronized (`STA_UNSYNC` or the maximum error is over
/// 16 s).
pub const TIME_ERROR: i32 = 5;
/// `STA_NANO`: `offset` is in nanoseconds, not microseconds.
pub const STA_NANO: i64 = 0x2000;

/// The clock's state, in seconds where the kernel gives a time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timex {
    /// Time offset being corrected (s).
    pub offset: f64,
    /// Frequency adjustment as a ratio: 1 + freq ÷ 2^16 ÷ 10^6.
    pub frequency_ratio: f64,
    /// Maximum error (s).
    pub max_error: f64,
    /// Estimated error (s).
    pub estimated_error: f64,
    /// The `status` bits (`STA_*`).
    pub status: i64,
    /// Whether the call's result is not `TIME_ERROR` (node_exporter's `node_timex_sync_status`).
    pub synchronized: bool,
    /// TAI − UTC (s), 0 when nothing set it.
    pub tai_offset: i64,
}

/// The state from the call's result and the struct it filled.
pub fn from_raw(state: i32, offset: i64, freq: i64, maxerror: i64, esterror: i64, status: i64, tai: i64) -> Timex {
    let offset_unit = if status & STA_NANO != 0 { 1e9 } else { 1e6 };
    Timex {
        offset: offset as f64 / offset_unit,
        frequency_ratio: 1.0 + freq as f64 / 65536.0 / 1e6,
        max_error: maxerror as f64 / 1e6,
        estimated_error: esterror as f64 / 1e6,
        status,
        synchronized: state != TIME_ERROR,
        tai_offset: tai,
    }
}

/// Asks the kernel (`adjtimex(2)`, modes 0). Fails where a seccomp policy refuses the call.
pub fn read() -> std::io::Result<Timex> {
    // SAFETY: a zeroed timex with modes 0 asks for a read; the kernel fills the struct.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // c_long is i64 on 64-bit targets, i32 on 32-bit ones
    Ok(from_raw(state, t.offset as i64, t.freq as i64, t.maxerror as i64, t.esterror as i64, t.status as i64, t.tai as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_kernels_units_to_seconds_and_a_ratio() {
        // An NTP-disciplined clock: STA_PLL | STA_NANO, 1.5 ms ahead, +10 ppm.
        let t = from_raw(0, 1_500_000, 655_360, 16_000, 500, 0x2001, 37);
        assert_eq!(t.offset, 0.0015);
        assert!((t.frequency_ratio - 1.000_01).abs() < 1e-12, "{}", t.frequency_ratio);
        assert_eq!((t.max_error, t.estimated_error, t.tai_offset), (0.016, 0.0005, 37));
        assert!(t.synchronized);
        // Without STA_NANO the offset is in microseconds.
        assert_eq!(from_raw(0, 1500, 0, 0, 0, 0x0001, 0).offset, 0.0015);
        // STA_UNSYNC (0x40): the call returns TIME_ERROR.
        assert!(!from_raw(TIME_ERROR, 0, 0, 16_000_000, 16_000_000, 0x40, 0).synchronized);
    }

    #[test]
    fn reads_this_hosts_clock() {
        let t = read().expect("adjtimex(2) with modes 0 needs no privilege");
        assert!(t.max_error >= 0.0 && t.estimated_error >= 0.0, "{t:?}");
        assert!((t.frequency_ratio - 1.0).abs() < 0.01, "the kernel bounds freq to ±500 ppm: {t:?}");
    }
}
