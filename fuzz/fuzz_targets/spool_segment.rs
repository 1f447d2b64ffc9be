//! Any bytes as a spool directory left by an earlier run (a corrupt, torn or foreign segment,
//! and a cursor pointing anywhere): opening it and reading back every record never panics,
//! every record read back is one the open counted, and reading ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::pipeline::spool::{Spool, SpoolConfig};
use std::path::PathBuf;
use std::sync::OnceLock;

/// One directory per fuzzing process, emptied for every input: under `METRICSD_FUZZ_DIR`
/// (`scripts/fuzz.sh` sets it and removes it afterwards), else on tmpfs where there is one.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = match std::env::var_os("METRICSD_FUZZ_DIR") {
            Some(d) => d.into(),
            None if std::path::Path::new("/dev/shm").is_dir() => "/dev/shm".into(),
            None => std::env::temp_dir(),
        };
        base.join(format!("metricsd-fuzz-spool-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, cursor_off], segment)) = data.split_first_chunk::<2>() else { return };
    let dir = dir();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    // Up to two segments; the second ends the directory as a run that was appending would.
    let (first, second) = segment.split_at(segment.len() / 2 * usize::from(flags & 1));
    std::fs::write(dir.join("00000001.seg"), first).unwrap();
    if flags & 1 == 1 {
        std::fs::write(dir.join("00000002.seg"), second).unwrap();
    }
    if flags & 2 == 2 {
        // A valid cursor into the first segment, anywhere (the spool's own format).
        let mut c = [0u8; 24];
        c[..4].copy_from_slice(b"MSC1");
        c[4..12].copy_from_slice(&1u64.to_le_bytes());
        c[12..20].copy_from_slice(&u64::from(cursor_off).to_le_bytes());
        let crc = crc32(&c[..20]);
        c[20..].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(dir.join("cursor"), c).unwrap();
    }
    let max_bytes = if flags & 4 == 4 { 64 } else { 1 << 20 };
    let (mut spool, report) = Spool::open(&SpoolConfig { dir: dir.clone(), max_bytes }).expect("a directory of ours opens");
    let mut read = 0u64;
    let _ = spool.stats();
    while let Some(rec) = spool.read_head() {
        read += 1;
        assert!(read <= report.records, "read {read} records, the open counted {}", report.records);
        assert!(rec.body.len() <= segment.len());
        spool.ack(rec.pos).expect("ack");
    }
    assert_eq!(read, report.records);
});

/// CRC-32 (IEEE), bitwise: the cursor's checksum without another dependency.
fn crc32(b: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in b {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
