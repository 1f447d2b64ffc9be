//! One GPU's tick: every value read through the [`GpuBackend`](super::device::GpuBackend), each
//! call made only while the GPU supports it; memory temperature and the PCIe byte counters in
//! one field-values call; then its processes and MIG devices.

use super::device::{field, ClockKind, EccKind, FieldValue, GpuBackend, NvLinkErrorKind};
use super::mig::sample_mig;
use super::processes::sample_processes;
use super::procutil::sample_utilization;
use super::snapshot::{GpuSnapshot, Values};
use super::state::{Abort, Cap, DeviceState, Scratch};
use super::GpuConfig;
use crate::units::HostPaths;
use std::time::Instant;

/// One GPU's tick. Partial values are left in `v` when it aborts; the caller discards them.
#[allow(clippy::too_many_arguments)]
pub(super) fn sample(
    b: &dyn GpuBackend,
    st: &mut DeviceState,
    config: &GpuConfig,
    paths: &HostPaths,
    now: Instant,
    scratch: &mut Scratch,
    v: &mut Values,
    snap: &mut GpuSnapshot,
) -> Result<(), Abort> {
    let d = st.dev;
    if let Some(u) = st.get(Cap::Utilization, || b.utilization(d))? {
        v.util = Some(u.gpu);
        v.memory_controller = Some(u.memory);
    }
    v.encoder = st.get(Cap::Encoder, || b.encoder_utilization(d))?;
    v.decoder = st.get(Cap::Decoder, || b.decoder_utilization(d))?;
    v.memory = st.get(Cap::Memory, || b.memory(d))?;
    v.temperature = st.get(Cap::Temperature, || b.temperature(d))?;
    v.power_mw = st.get(Cap::Power, || b.power_usage(d))?;
    v.power_limit_mw = st.get(Cap::PowerLimit, || b.power_limit(d))?;
    if st.energy_due.is_none_or(|t| now >= t) {
        if let Some(e) = st.get(Cap::Energy, || b.total_energy(d))? {
            st.energy_mj = Some(e);
        }
        st.energy_due = Some(crate::units::duration::deadline_after(now, config.energy_interval.get()));
    }
    v.energy_mj = st.energy_mj;
    v.clock_sm_mhz = st.get(Cap::ClockSm, || b.clock(d, ClockKind::Sm))?;
    v.clock_memory_mhz = st.get(Cap::ClockMemory, || b.clock(d, ClockKind::Memory))?;
    for fan in 0..st.fans {
        match st.get(Cap::FanSpeed, || b.fan_speed(d, fan))? {
            Some(p) => v.fans.push((fan as usize, p)),
            None => break,
        }
    }
    v.pstate = st.get(Cap::PState, || b.performance_state(d))?;
    v.throttle = st.get(Cap::Throttle, || b.throttle_reasons(d))?;
    v.ecc[0] = st.get(Cap::EccCorrected, || b.ecc_errors(d, EccKind::Corrected))?;
    v.ecc[1] = st.get(Cap::EccUncorrected, || b.ecc_errors(d, EccKind::Uncorrected))?;
    v.replay = st.get(Cap::PcieReplay, || b.pcie_replay_counter(d))?;

    // Memory temperature, the PCIe byte counters and memory health: one field-values call.
    scratch.ids.clear();
    let wanted = [
        (Cap::MemoryTemperature, field::MEMORY_TEMP, true),
        (Cap::PcieTx, field::PCIE_TX_BYTES, config.pcie_io && !st.pcie_sampled),
        (Cap::PcieRx, field::PCIE_RX_BYTES, config.pcie_io && !st.pcie_sampled),
        (Cap::NvLinkTx, field::NVLINK_TX_KIB, config.nvlink),
        (Cap::NvLinkRx, field::NVLINK_RX_KIB, config.nvlink),
        (Cap::RetiredSbe, field::RETIRED_SBE, config.memory_health),
        (Cap::RetiredDbe, field::RETIRED_DBE, config.memory_health),
        (Cap::RetiredPending, field::RETIRED_PENDING, config.memory_health),
        (Cap::RemappedCor, field::REMAPPED_COR, config.memory_health),
        (Cap::RemappedUnc, field::REMAPPED_UNC, config.memory_health),
        (Cap::RemappedPending, field::REMAPPED_PENDING, config.memory_health),
        (Cap::RemappedFailure, field::REMAPPED_FAILURE, config.memory_health),
    ];
    for (cap, id, on) in wanted {
        if on && st.supports(cap) {
            scratch.ids.push(id);
        }
    }
    if !scratch.ids.is_empty() {
        scratch.fields.clear();
        let (ids, fields) = (&scratch.ids, &mut scratch.fields);
        if st.get(Cap::FieldValues, || b.field_values(d, ids, fields))?.is_some() {
            for (id, r) in scratch.ids.iter().zip(scratch.fields.drain(..)) {
                let Some((cap, _, _)) = wanted.iter().find(|w| w.1 == *id) else {
                    continue;
                };
                let Some(value) = st.get(*cap, || r)? else {
                    continue;
                };
                match *id {
                    field::MEMORY_TEMP => v.memory_temperature = Some(value.as_f64()),
                    field::PCIE_TX_BYTES => v.pcie[0] = Some(st.pcie[0].update(value)),
                    field::PCIE_RX_BYTES => v.pcie[1] = Some(st.pcie[1].update(value)),
                    field::NVLINK_TX_KIB => v.nvlink_io[0] = Some(count(value).saturating_mul(1024)),
                    field::NVLINK_RX_KIB => v.nvlink_io[1] = Some(count(value).saturating_mul(1024)),
                    field::RETIRED_SBE => v.retired[0] = Some(count(value)),
                    field::RETIRED_DBE => v.retired[1] = Some(count(value)),
                    field::RETIRED_PENDING => v.retired_pending = Some(count(value) != 0),
                    field::REMAPPED_COR => v.remapped[0] = Some(count(value)),
                    field::REMAPPED_UNC => v.remapped[1] = Some(count(value)),
                    field::REMAPPED_PENDING => v.remap_pending = Some(count(value) != 0),
                    field::REMAPPED_FAILURE => v.remap_failed = Some(count(value) != 0),
                    _ => {}
                }
            }
        }
    }

    if config.nvlink {
        sample_links(b, st, v)?;
    }
    if config.processes {
        sample_processes(b, st, config, paths, scratch, snap)?;
        sample_utilization(b, st, paths, scratch, snap)?;
    }
    if config.mig {
        sample_mig(b, st, scratch, snap)?;
    }
    Ok(())
}

/// Each NVLink link's state and error counters (one call each per link; links found at
/// enumeration).
fn sample_links(b: &dyn GpuBackend, st: &mut DeviceState, v: &mut Values) -> Result<(), Abort> {
    let d = st.dev;
    let caps = [Cap::NvLinkCrcFlit, Cap::NvLinkCrcData, Cap::NvLinkReplay, Cap::NvLinkRecovery];
    for i in 0..st.links.len() {
        let link = st.links[i];
        let active = st.get(Cap::NvLinkState, || b.nvlink_active(d, link))?;
        let mut errors = [None; 4];
        for (k, (kind, _)) in NvLinkErrorKind::ALL.iter().enumerate() {
            errors[k] = st.get(caps[k], || b.nvlink_errors(d, link, *kind))?;
        }
        v.nvlink.push((active, errors));
    }
    Ok(())
}

/// A field value that counts something, as u64 (a negative or fractional answer clamps).
fn count(v: FieldValue) -> u64 {
    match v {
        FieldValue::U32(v) => v as u64,
        FieldValue::U64(v) => v,
        FieldValue::I64(v) => v.max(0) as u64,
        FieldValue::F64(v) if v.is_finite() && v > 0.0 => v as u64,
        FieldValue::F64(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::collectors::gpu::device::throttle;
    use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
    use crate::collectors::gpu::rig::*;
    use crate::collectors::gpu::GpuConfig;
    use crate::collectors::testutil::{kind, of, value, Kind};
    use crate::units::{ConfigDuration, HostPaths};

    #[test]
    fn reports_every_gpu_metric_with_the_fake_h100s_exact_values() {
        let mut second = FakeGpu::h100(1);
        second.temperature = 50;
        let mut r = Rig::new(FakeNvml::with(vec![FakeGpu::h100(0), second]));
        let p = r.tick();
        let g = |extra| at(0, extra);

        assert_eq!(value(&p, "nvidia.gpu.count", &[]), Some(2.0));
        assert_eq!(value(&p, "hw.gpu.utilization", &g(&[("hw.gpu.task", "general")])), Some(0.37));
        assert_eq!(value(&p, "hw.gpu.utilization", &g(&[("hw.gpu.task", "encoder")])), Some(0.05));
        assert_eq!(value(&p, "hw.gpu.utilization", &g(&[("hw.gpu.task", "decoder")])), Some(0.07));
        assert_eq!(value(&p, "nvidia.gpu.memory_controller.utilization", &g(&[])), Some(0.12));
        assert_eq!(value(&p, "hw.gpu.memory.usage", &g(&[])), Some(21_474_836_480.0));
        assert_eq!(value(&p, "hw.gpu.memory.limit", &g(&[])), Some(85_520_809_984.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.free", &g(&[])), Some(63_542_657_024.0));
        assert_eq!(value(&p, "hw.gpu.memory.utilization", &g(&[])), Some(21_474_836_480.0 / 85_520_809_984.0));
        assert_eq!(value(&p, "hw.gpu.io", &g(&[("network.io.direction", "transmit")])), Some(1000.0));
        assert_eq!(value(&p, "hw.gpu.io", &g(&[("network.io.direction", "receive")])), Some(2000.0));
        assert_eq!(value(&p, "hw.power", &g(&[])), Some(115.35));
        assert_eq!(value(&p, "nvidia.gpu.power.limit", &g(&[])), Some(700.0));
        assert_eq!(value(&p, "hw.energy", &g(&[])), Some(2147.197));
        assert_eq!(value(&p, "hw.temperature", &g(&[("hw.sensor_location", "gpu")])), Some(36.0));
        assert_eq!(value(&p, "hw.temperature", &g(&[("hw.sensor_location", "memory")])), Some(41.0));
        assert_eq!(value(&p, "nvidia.gpu.clock.sm", &g(&[])), Some(1_755_000_000.0));
        assert_eq!(value(&p, "nvidia.gpu.clock.memory", &g(&[])), Some(2_619_000_000.0));
        assert!(of(&p, "nvidia.gpu.fan.speed").is_empty(), "an H100 has no fans");
        assert_eq!(value(&p, "nvidia.gpu.pstate", &g(&[])), Some(0.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &g(&[("nvidia.gpu.throttle.reason", "gpu_idle")])), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &g(&[("nvidia.gpu.throttle.reason", "sw_power_cap")])), Some(0.0));
        assert_eq!(of(&p, "nvidia.gpu.throttle").len(), 2 * throttle::REASONS.len());
        assert_eq!(value(&p, "hw.errors", &g(&[("error.type", "corrected")])), Some(3.0));
        assert_eq!(value(&p, "hw.errors", &g(&[("error.type", "uncorrected")])), Some(0.0));
        assert_eq!(value(&p, "nvidia.gpu.pcie.replay", &g(&[])), Some(2.0));
        assert_eq!(value(&p, "hw.status", &g(&[("hw.state", "ok")])), Some(1.0));
        assert_eq!(value(&p, "hw.status", &g(&[("hw.state", "degraded")])), Some(0.0));
        assert_eq!(value(&p, "hw.status", &g(&[("hw.state", "failed")])), Some(0.0));
        assert!(of(&p, "nvidia.gpu.process.memory.usage").is_empty(), "idle GPU");
        assert!(of(&p, "nvidia.gpu.mig.memory.usage").is_empty(), "MIG is off");
        // The second GPU is reported apart, under its own identity.
        assert_eq!(value(&p, "hw.temperature", &at(1, &[("hw.sensor_location", "gpu")])), Some(50.0));

        for (m, k) in [
            ("hw.gpu.io", Kind::Counter),
            ("hw.energy", Kind::Counter),
            ("hw.errors", Kind::Counter),
            ("nvidia.gpu.pcie.replay", Kind::Counter),
            ("hw.gpu.memory.usage", Kind::UpDownCounter),
            ("hw.status", Kind::UpDownCounter),
            ("nvidia.gpu.count", Kind::UpDownCounter),
            ("hw.power", Kind::Gauge),
            ("hw.gpu.utilization", Kind::Gauge),
        ] {
            assert_eq!(kind(&p, m), Some(k), "{m}");
        }
        for (m, u) in [
            ("hw.gpu.utilization", "1"),
            ("hw.gpu.memory.usage", "By"),
            ("hw.gpu.io", "By"),
            ("hw.power", "W"),
            ("hw.energy", "J"),
            ("hw.temperature", "Cel"),
            ("nvidia.gpu.clock.sm", "Hz"),
            ("hw.errors", "{error}"),
        ] {
            assert_eq!(r.h.unit(m), Some(u), "{m}");
        }
    }

    #[test]
    fn a_call_a_gpu_does_not_support_is_made_once_and_not_logged() {
        let gpu = FakeGpu::h100(0).without(&["temperature", "encoder_utilization", "field:82", "mig_enabled"]);
        let fake = FakeNvml::with(vec![gpu]);
        let mut r = Rig::new(fake.clone());
        let (p, logs) = capture_logs(|| {
            r.tick();
            r.after(10);
            r.after(10)
        });
        assert_eq!(fake.calls(0, "temperature"), 1);
        assert_eq!(fake.calls(0, "encoder_utilization"), 1);
        assert_eq!(fake.calls(0, "mig_enabled"), 1);
        assert_eq!(fake.calls(0, "fan_count"), 1, "fans are counted once, at enumeration");
        assert_eq!(fake.calls(0, "fan_speed"), 0, "a fanless GPU is never asked for fan speed");
        assert_eq!(fake.calls(0, "utilization"), 3);
        assert!(of(&p, "hw.temperature").is_empty());
        assert_eq!(value(&p, "hw.gpu.utilization", &at(0, &[("hw.gpu.task", "encoder")])), None);
        assert_eq!(value(&p, "hw.gpu.utilization", &at(0, &[("hw.gpu.task", "decoder")])), Some(0.07));
        assert_eq!(value(&p, "hw.gpu.io", &at(0, &[("network.io.direction", "receive")])), Some(2000.0));
        assert!(!logs.contains("WARN") && !logs.contains("not supported"), "logs: {logs}");
    }

    #[test]
    fn field_values_are_not_requested_once_every_field_is_known_unsupported() {
        let gpu = FakeGpu::h100(0).without(&[
            "field:82",
            "field:197",
            "field:198",
            "field:29",
            "field:30",
            "field:31",
            "field:142",
            "field:143",
            "field:144",
            "field:145",
        ]);
        let fake = FakeNvml::with(vec![gpu]);
        let mut r = Rig::new(fake.clone());
        r.tick();
        let p = r.after(10);
        assert_eq!(fake.calls(0, "field_values"), 1);
        assert!(of(&p, "hw.gpu.io").is_empty());
    }

    #[test]
    fn pcie_io_off_leaves_the_pcie_counters_out() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let config = GpuConfig { pcie_io: false, ..GpuConfig::default() };
        let mut r = Rig::with(fake, config, HostPaths::under("/nonexistent-metricsd-test"));
        let p = r.tick();
        assert!(of(&p, "hw.gpu.io").is_empty());
        assert_eq!(value(&p, "hw.temperature", &at(0, &[("hw.sensor_location", "memory")])), Some(41.0));
    }

    #[test]
    fn the_u32_pcie_byte_counters_wrap_into_a_u64_total() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        fake.state().gpus[0].pcie_tx = 4_294_967_000;
        let mut r = Rig::new(fake.clone());
        let tx = at(0, &[("network.io.direction", "transmit")]);
        assert_eq!(value(&r.tick(), "hw.gpu.io", &tx), Some(4_294_967_000.0));
        fake.state().gpus[0].pcie_tx = 200; // wrapped: 296 bytes to 2^32, then 200
        assert_eq!(value(&r.after(10), "hw.gpu.io", &tx), Some(4_294_967_496.0));
        fake.state().gpus[0].pcie_tx = 1200;
        assert_eq!(value(&r.after(10), "hw.gpu.io", &tx), Some(4_294_968_496.0));
        let rx = at(0, &[("network.io.direction", "receive")]);
        assert_eq!(value(&r.after(10), "hw.gpu.io", &rx), Some(2000.0));
    }

    #[test]
    fn memory_health_reports_remapped_rows_and_retired_pages_where_the_gpu_tracks_them() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0), FakeGpu::h100(1).without(&["field:29", "field:30", "field:31"])]);
        fake.state().gpus[0].remap_pending = true;
        let mut r = Rig::new(fake.clone());
        let (p, logs) = capture_logs(|| r.tick());
        let g = |extra| at(0, extra);
        assert_eq!(value(&p, "nvidia.gpu.memory.remapped_rows", &g(&[("error.type", "corrected")])), Some(4.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.remapped_rows", &g(&[("error.type", "uncorrected")])), Some(0.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.remap.pending", &g(&[])), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.remap.failed", &g(&[])), Some(0.0));
        let cause = |c| at(0, &[("nvidia.gpu.retirement.cause", c)]);
        assert_eq!(value(&p, "nvidia.gpu.memory.retired_pages", &cause("multiple_single_bit_ecc")), Some(2.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.retired_pages", &cause("double_bit_ecc")), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.retired_pages.pending", &g(&[])), Some(0.0));
        // Memory waiting for a reset degrades the GPU; the other GPU is fine.
        assert_eq!(value(&p, "hw.status", &g(&[("hw.state", "degraded")])), Some(1.0));
        assert_eq!(value(&p, "hw.status", &at(1, &[("hw.state", "ok")])), Some(1.0));
        // The second GPU has no page retirement (as an H100): those metrics are absent for it,
        // logged at debug only; its remapped rows are still there.
        assert!(points_of_gpu(&p, UUID1).iter().all(|p| !p.0.starts_with("nvidia.gpu.memory.retired_pages")));
        assert_eq!(value(&p, "nvidia.gpu.memory.remapped_rows", &at(1, &[("error.type", "corrected")])), Some(4.0));
        assert!(!logs.contains("WARN"), "{logs}");

        // A new remapping and a failed one show on the next tick.
        {
            let mut s = fake.state();
            s.gpus[0].remapped = [5, 1];
            s.gpus[0].remap_failed = true;
        }
        let p = r.after(10);
        assert_eq!(value(&p, "nvidia.gpu.memory.remapped_rows", &g(&[("error.type", "uncorrected")])), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.remap.failed", &g(&[])), Some(1.0));

        let config = GpuConfig { memory_health: false, ..GpuConfig::default() };
        let mut r = Rig::with(FakeNvml::with(vec![FakeGpu::h100(0)]), config, HostPaths::under("/nonexistent-metricsd-test"));
        let p = r.tick();
        assert!(of(&p, "nvidia.gpu.memory.remapped_rows").is_empty() && of(&p, "nvidia.gpu.memory.retired_pages").is_empty());
    }

    #[test]
    fn nvlink_reports_each_links_state_and_errors_and_the_gpus_bytes_where_it_has_links() {
        let mut gpu = FakeGpu::h100(0);
        gpu.nvlinks = vec![(true, [1, 2, 3, 4]), (false, [0; 4])];
        gpu.nvlink_kib = [10, 20];
        let fake = FakeNvml::with(vec![gpu, FakeGpu::h100(1)]);
        let mut r = Rig::new(fake.clone());
        r.tick();
        let p = r.after(10);
        let link = |l| at(0, &[("nvidia.gpu.nvlink.link", l)]);
        assert_eq!(value(&p, "nvidia.gpu.nvlink.state", &link("0")), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.nvlink.state", &link("1")), Some(0.0));
        let err = |l, t| at(0, &[("nvidia.gpu.nvlink.link", l), ("error.type", t)]);
        assert_eq!(value(&p, "nvidia.gpu.nvlink.errors", &err("0", "crc_flit")), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.nvlink.errors", &err("0", "crc_data")), Some(2.0));
        assert_eq!(value(&p, "nvidia.gpu.nvlink.errors", &err("0", "replay")), Some(3.0));
        assert_eq!(value(&p, "nvidia.gpu.nvlink.errors", &err("0", "recovery")), Some(4.0));
        assert_eq!(of(&p, "nvidia.gpu.nvlink.errors").len(), 8);
        assert_eq!(value(&p, "nvidia.gpu.nvlink.io", &at(0, &[("network.io.direction", "transmit")])), Some(10240.0));
        assert_eq!(value(&p, "nvidia.gpu.nvlink.io", &at(0, &[("network.io.direction", "receive")])), Some(20480.0));
        assert_eq!(kind(&p, "nvidia.gpu.nvlink.io"), Some(Kind::Counter));
        // The second GPU has no NVLink (as the H100 VM): nothing, and asked once, at enumeration.
        assert!(points_of_gpu(&p, UUID1).iter().all(|p| !p.0.starts_with("nvidia.gpu.nvlink")));
        assert_eq!(fake.calls(1, "nvlink_active"), 1);
        assert_eq!(fake.calls(1, "nvlink_errors"), 0);
        // Probed at enumeration (links 0 and 1 answer, 2 to 17 do not), then each link per tick.
        assert_eq!(fake.calls(0, "nvlink_active"), 18 + 2 * 2);
    }

    /// The driver calls one tick makes for a GPU with everything (2 NVLink links, processes),
    /// and what a tick costs on the fake (printed: `cargo test --lib tick_cost -- --nocapture`).
    #[test]
    fn tick_cost_one_tick_makes_a_bounded_set_of_driver_calls_per_gpu() {
        use crate::collectors::Collector;
        let mut gpu = FakeGpu::h100(0);
        gpu.nvlinks = vec![(true, [0; 4]); 2];
        gpu.compute = vec![proc(1, Some(1))];
        let fake = FakeNvml::with(vec![gpu]);
        let mut r = Rig::new(fake.clone());
        r.tick();
        let before = fake.state().calls.clone();
        let n = 1000;
        let started = std::time::Instant::now();
        for _ in 0..n {
            r.c.refresh().unwrap();
        }
        let per_tick = started.elapsed() / n;
        let calls: Vec<(String, u32)> = fake
            .state()
            .calls
            .iter()
            .filter(|((d, name), _)| *d == 0 && !name.starts_with("helper:") && name != "pcie_tx_read")
            .map(|((_, name), c)| (name.clone(), (c - before.get(&(0, name.clone())).copied().unwrap_or(0)) / n))
            .filter(|(_, c)| *c > 0)
            .collect();
        let total: u32 = calls.iter().map(|(_, c)| c).sum();
        println!("one tick of one fully featured fake GPU: {per_tick:?}, {total} driver calls: {calls:?}");
        // energy every 60 s (not per tick); one field-values call for every field value; per
        // link one state and four error calls; the two process lists and the utilization samples.
        let expected = [
            ("clock", 2),
            ("compute_processes", 1),
            ("decoder_utilization", 1),
            ("ecc_errors", 2),
            ("encoder_utilization", 1),
            ("field_values", 1),
            ("graphics_processes", 1),
            ("memory", 1),
            ("mig_enabled", 1),
            ("nvlink_active", 2),
            ("nvlink_errors", 8),
            ("pcie_replay_counter", 1),
            ("performance_state", 1),
            ("power_limit", 1),
            ("power_usage", 1),
            ("process_utilization", 1),
            ("temperature", 1),
            ("throttle_reasons", 1),
            ("utilization", 1),
        ];
        let got: Vec<(&str, u32)> = calls.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn energy_is_read_every_energy_interval_and_held_in_between() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let mut r = Rig::new(fake.clone());
        assert_eq!(value(&r.tick(), "hw.energy", &at(0, &[])), Some(2147.197));
        fake.state().gpus[0].energy_mj = 3_000_000;
        assert_eq!(value(&r.after(30), "hw.energy", &at(0, &[])), Some(2147.197));
        assert_eq!(fake.calls(0, "total_energy"), 1);
        assert_eq!(value(&r.after(30), "hw.energy", &at(0, &[])), Some(3000.0));
        assert_eq!(fake.calls(0, "total_energy"), 2);

        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let config = GpuConfig { energy_interval: ConfigDuration::secs(0), ..GpuConfig::default() };
        let mut r = Rig::with(fake.clone(), config, HostPaths::under("/nonexistent-metricsd-test"));
        r.tick();
        r.after(1);
        assert_eq!(fake.calls(0, "total_energy"), 2);
    }

    #[test]
    fn hw_status_is_degraded_while_the_hardware_slows_itself_down() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        fake.state().gpus[0].throttle = throttle::HW_THERMAL_SLOWDOWN | throttle::SW_POWER_CAP;
        let mut r = Rig::new(fake.clone());
        let p = r.tick();
        assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "degraded")])), Some(1.0));
        assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "ok")])), Some(0.0));
        let reason = |r| at(0, &[("nvidia.gpu.throttle.reason", r)]);
        assert_eq!(value(&p, "nvidia.gpu.throttle", &reason("hw_thermal_slowdown")), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &reason("sw_power_cap")), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &reason("gpu_idle")), Some(0.0));
        // A power cap alone is normal operation.
        fake.state().gpus[0].throttle = throttle::SW_POWER_CAP;
        assert_eq!(value(&r.after(10), "hw.status", &at(0, &[("hw.state", "ok")])), Some(1.0));
    }

    #[test]
    fn fans_are_reported_per_fan_where_a_gpu_has_them() {
        let mut gpu = FakeGpu::h100(0);
        gpu.fans = vec![40, 45];
        let mut r = Rig::new(FakeNvml::with(vec![gpu]));
        let p = r.tick();
        assert_eq!(value(&p, "nvidia.gpu.fan.speed", &at(0, &[("nvidia.gpu.fan.index", "0")])), Some(0.40));
        assert_eq!(value(&p, "nvidia.gpu.fan.speed", &at(0, &[("nvidia.gpu.fan.index", "1")])), Some(0.45));
    }
}
