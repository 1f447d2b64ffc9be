//! `/proc/mdstat`: the Linux software RAID (md) arrays, an array per paragraph:
//!
//! ```text
//! md1 : active raid5 sdc1[2] sdd1[3](F) sde1[4](S) sdb1[0]
//!       3906764800 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [U_U]
//!       [=>...................]  recovery =  8.5% (166261248/1953382400) finish=194.8min speed=152832K/sec
//! ```
//!
//! The first line: the array, `active` or `inactive` (with `(read-only)` or
//! `(auto-read-only)`), the level (active arrays only) and the members, `(F)` failed, `(S)`
//! spare (also `(W)` write-mostly, `(J)` journal, `(R)` replacement: counted as active). The
//! second: the size in 1 KiB blocks and, for redundant levels, `[required/up]`. Then an optional
//! progress line of a `recovery`, `resync`, `check` or `reshape` with `(done/total)` blocks, or
//! `resync=PENDING`/`DELAYED` (a resync waiting to start: state `resync`, 0 blocks done, as
//! node_exporter counts it). Lines of other kinds (`bitmap:`,
//! `Personalities`, `unused devices`) are ignored.

use super::{LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// At most this many arrays are kept.
pub const MAX_ARRAYS: usize = 4096;

/// What an array is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    Inactive,
    Recovering,
    Resync,
    Check,
    Reshape,
}

impl State {
    pub const ALL: [State; 6] = [State::Active, State::Inactive, State::Recovering, State::Resync, State::Check, State::Reshape];

    /// `active`, `inactive`, `recovering`, `resync`, `check`, `reshape` (node_exporter's values).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Inactive => "inactive",
            State::Recovering => "recovering",
            State::Resync => "resync",
            State::Check => "check",
            State::Reshape => "reshape",
        }
    }
}

/// One array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    /// `md1`.
    pub device: String,
    pub state: State,
    /// `raid5`; `None` for an inactive array.
    pub level: Option<String>,
    /// Members up: the second number of `[3/2]`, else the members neither failed nor spare.
    pub active: u32,
    pub failed: u32,
    pub spare: u32,
    /// The first number of `[3/2]` (redundant levels only).
    pub required: Option<u32>,
    /// Size in 1 KiB blocks.
    pub blocks: u64,
    /// `(done, total)` blocks of the running recovery, resync, check or reshape.
    pub sync: Option<(u64, u64)>,
}

/// Parses the text of `/proc/mdstat`.
pub fn parse(text: &str) -> Result<Vec<Array>, LineError> {
    let mut out: Vec<Array> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if !line.starts_with(char::is_whitespace) {
            let Some((device, rest)) = line.split_once(" : ") else { continue };
            if device == "Personalities" || device.contains(' ') || out.len() >= MAX_ARRAYS {
                continue;
            }
            let mut tokens = rest.split_ascii_whitespace().peekable();
            let state = match tokens.next() {
                Some("active") => State::Active,
                Some("inactive") => State::Inactive,
                other => return Err(LineError::new(n, format!("{device}: unknown state {other:?}"))),
            };
            while tokens.next_if(|t| t.starts_with('(')).is_some() {}
            let level = if state == State::Active { tokens.next().map(str::to_string) } else { None };
            let (mut active, mut failed, mut spare) = (0, 0, 0);
            for member in tokens {
                if !member.contains('[') {
                    return Err(LineError::new(n, format!("{device}: not a member: {member:?}")));
                }
                if member.ends_with("(F)") {
                    failed += 1;
                } else if member.ends_with("(S)") {
                    spare += 1;
                } else {
                    active += 1;
                }
            }
            out.push(Array { device: device.to_string(), state, level, active, failed, spare, required: None, blocks: 0, sync: None });
            continue;
        }
        let Some(a) = out.last_mut() else { continue };
        let t = line.trim_start();
        if let Some((blocks, rest)) = t.split_once(" blocks") {
            a.blocks = blocks.trim().parse().map_err(|_| LineError::new(n, format!("{}: blocks: not a number: {blocks:?}", a.device)))?;
            // The first `[required/up]` of the line (not `[UU_]`).
            if let Some(counts) = rest.split('[').skip(1).filter_map(|s| s.split_once(']')).map(|(s, _)| s).find(|s| s.contains('/')) {
                let (req, up) = counts.split_once('/').unwrap_or_default();
                let bad = || LineError::new(n, format!("{}: not [required/up]: {counts:?}", a.device));
                a.required = Some(req.parse().map_err(|_| bad())?);
                a.active = up.parse().map_err(|_| bad())?;
            }
        } else if t.starts_with("resync=PENDING") || t.starts_with("resync=DELAYED") {
            a.sync = Some((0, a.blocks));
            if a.state == State::Active {
                a.state = State::Resync;
            }
        } else if let Some((action, state)) = [("recovery", State::Recovering), ("resync", State::Resync), ("check", State::Check), ("reshape", State::Reshape)]
            .into_iter()
            .find(|(a, _)| t.contains(&format!("{a} =")))
        {
            let progress = t.split_once('(').and_then(|(_, r)| r.split_once(')')).map(|(p, _)| p).and_then(|p| p.split_once('/'));
            let Some((done, total)) = progress else {
                return Err(LineError::new(n, format!("{}: {action} without (done/total)", a.device)));
            };
            let bad = || LineError::new(n, format!("{}: {action}: not (done/total)", a.device));
            a.sync = Some((done.parse().map_err(|_| bad())?, total.parse().map_err(|_| bad())?));
            if a.state == State::Active {
                a.state = state;
            }
        }
    }
    Ok(out)
}

/// `/proc/mdstat` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("mdstat")
}

/// Reads and parses the file through a file kept open between ticks; `NotFound` where the md
/// driver is not loaded.
pub fn read_file(file: &mut ProcFile) -> Result<Vec<Array>, ProcError> {
    let text = file.read()?;
    parse(text).map_err(|e| super::at(file.path(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn reads_healthy_degraded_pending_checking_and_inactive_arrays() {
        let v = read_file(&mut ProcFile::new(path(&fixture_paths("linux-6.8-sensors")))).unwrap();
        let by = |d: &str| v.iter().find(|a| a.device == d).unwrap().clone();
        assert_eq!(v.len(), 5);
        let md2 = by("md2");
        assert_eq!(
            (md2.state, md2.level.as_deref(), md2.active, md2.required, md2.blocks, md2.sync),
            (State::Active, Some("raid1"), 2, Some(2), 1_919_891_456, None)
        );
        let md1 = by("md1");
        assert_eq!((md1.state, md1.active, md1.failed, md1.spare, md1.required), (State::Recovering, 2, 1, 1, Some(3)));
        assert_eq!(md1.sync, Some((166_261_248, 1_953_382_400)));
        let md127 = by("md127");
        assert_eq!((md127.state, md127.sync), (State::Resync, Some((0, 488_254_464))), "resync=PENDING: waiting to start");
        let md3 = by("md3");
        assert_eq!((md3.state, md3.active, md3.sync), (State::Check, 4, Some((508_720_128, 976_628_736))));
        let md0 = by("md0");
        assert_eq!((md0.state, md0.level, md0.spare, md0.required, md0.blocks), (State::Inactive, None, 1, None, 976_630_488));
    }

    #[test]
    fn a_raid0_has_no_required_count_and_bad_lines_name_their_line() {
        let v = parse("md0 : active raid0 sdb[1] sda[0]\n      1000 blocks super 1.2 512k chunks\n").unwrap();
        assert_eq!((v[0].active, v[0].required, v[0].blocks), (2, None, 1000));
        assert_eq!(parse("md0 : broken raid1\n").unwrap_err().to_string(), "line 1: md0: unknown state Some(\"broken\")");
        assert_eq!(parse("md0 : active raid1 sda[0]\n      x blocks\n").unwrap_err().line, 2);
        assert!(parse("md0 : active raid1 sda[0]\n      10 blocks [2/1] [U_]\n      [>..]  recovery = 1.0% finish=1min\n").is_err());
    }

    #[test]
    fn a_host_without_md_is_not_found() {
        let err = read_file(&mut ProcFile::new(path(&fixture_paths("linux-6.18-vm")))).unwrap_err();
        assert!(err.is_io_kind(std::io::ErrorKind::NotFound));
    }
}
