//! Cloud identity from DMI (SMBIOS) strings in `SYS/class/dmi/id/`: `cloud.provider`,
//! `cloud.platform`, `host.type` and, on EC2 Nitro, `host.id` = the instance ID.
//!
//! Only what local files prove is reported: there is no metadata-service call, so region,
//! zone and account stay unset. A plain hypervisor (QEMU/KVM, VMware, VirtualBox, Xen,
//! Hyper-V, Hetzner's QEMU, Firecracker, which has no DMI at all) is not a cloud: nothing is
//! set here, and `host.id` comes from the host detector (machine-id, else the DMI UUID).
//!
//! What each source says, and what we read from it:
//!
//! | Cloud | DMI evidence | `cloud.provider` / `cloud.platform` | `host.type` | `host.id` |
//! | --- | --- | --- | --- | --- |
//! | AWS, Nitro | `sys_vendor` = `Amazon EC2` (so are `board_vendor`, `bios_vendor`, `chassis_vendor`) | `aws` / `aws_ec2` | `product_name`, the instance type (`m5.large`) | `board_asset_tag` when it is an instance ID (`i-0af01c0123456789a`), as AWS documents |
//! | AWS, Xen | `bios_version` ends in `.amazon` (`4.11.amazon`), or `product_uuid` starts with `ec2` and equals `product_serial` (cloud-init's rule) | `aws` / `aws_ec2` | — (`product_name` is `HVM domU`) | — |
//! | Google Cloud | `product_name` = `Google Compute Engine`, or `product_serial` starts with `GoogleCloud-` (`sys_vendor` = `Google` alone would also match Chromebooks) | `gcp` / `gcp_compute_engine` | — (the machine type is only in the metadata server) | — |
//! | Azure | `chassis_asset_tag` = `7783-7084-3265-9085-8269-3286-77` (cloud-init's test; on-premises Hyper-V has the same `Microsoft Corporation` / `Virtual Machine` strings but not this tag) | `azure` / `azure_vm` | — | — |
//! | Alibaba Cloud | `product_name` = `Alibaba Cloud ECS` | `alibaba_cloud` / `alibaba_cloud_ecs` | — | — |
//! | Oracle Cloud | `chassis_asset_tag` = `OracleCloud.com` | `oracle_cloud` / `oracle_cloud_compute` | — | — |
//!
//! Hetzner (`sys_vendor` = `Hetzner`) has no `cloud.provider` value in the semantic
//! conventions, so it is treated as a plain hypervisor. Semconv wants `host.id` to be the
//! cloud's instance ID; only EC2 Nitro puts it in DMI (GCP's numeric ID and Azure's `vmId`
//! need the metadata service), so elsewhere `host.id` stays the machine-id.
//!
//! ```text
//! /sys/class/dmi/id/sys_vendor:        Amazon EC2
//! /sys/class/dmi/id/product_name:      m5.large
//! /sys/class/dmi/id/board_asset_tag:   i-0af01c0123456789a
//! /sys/class/dmi/id/chassis_asset_tag: 7783-7084-3265-9085-8269-3286-77
//! ```

use crate::units::HostPaths;

use super::{read_trimmed, DetectInput, Detected};

/// The DMI strings the detector reads; `None` where the file is absent, unreadable
/// (`product_uuid` and `product_serial` are root-only) or blank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    /// `sys_vendor`: the system manufacturer (`Amazon EC2`, `Google`, `QEMU`).
    pub sys_vendor: Option<String>,
    /// `product_name`: the model (an EC2 instance type, `Google Compute Engine`).
    pub product_name: Option<String>,
    /// `product_uuid`: the SMBIOS system UUID (root-only).
    pub product_uuid: Option<String>,
    /// `product_serial`: the system serial number (root-only).
    pub product_serial: Option<String>,
    /// `board_vendor`: the baseboard manufacturer.
    pub board_vendor: Option<String>,
    /// `board_asset_tag`: the EC2 instance ID on Nitro.
    pub board_asset_tag: Option<String>,
    /// `bios_vendor`: the firmware vendor.
    pub bios_vendor: Option<String>,
    /// `bios_version`: the firmware version (`4.11.amazon` on Xen EC2).
    pub bios_version: Option<String>,
    /// `chassis_asset_tag`: Azure's and Oracle Cloud's marker.
    pub chassis_asset_tag: Option<String>,
}

impl Dmi {
    /// Reads `SYS/class/dmi/id/*`.
    pub fn read(paths: &HostPaths) -> Dmi {
        let f = |name: &str| read_trimmed(&paths.sys(&format!("class/dmi/id/{name}")));
        Dmi {
            sys_vendor: f("sys_vendor"),
            product_name: f("product_name"),
            product_uuid: f("product_uuid"),
            product_serial: f("product_serial"),
            board_vendor: f("board_vendor"),
            board_asset_tag: f("board_asset_tag"),
            bios_vendor: f("bios_vendor"),
            bios_version: f("bios_version"),
            chassis_asset_tag: f("chassis_asset_tag"),
        }
    }
}

/// What DMI proves about the cloud, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// `cloud.provider`.
    pub provider: &'static str,
    /// `cloud.platform`.
    pub platform: &'static str,
    /// `host.type`, where DMI has it.
    pub host_type: Option<String>,
    /// The instance ID, which becomes `host.id`.
    pub instance_id: Option<String>,
}

/// Azure's chassis asset tag, the one DMI string that tells Azure from on-premises Hyper-V.
pub const AZURE_CHASSIS_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// Tells the cloud from DMI strings, by the rules in the module table.
pub fn classify(dmi: &Dmi) -> Option<Cloud> {
    let is = |v: &Option<String>, want: &str| v.as_deref() == Some(want);
    let cloud = |provider, platform| Cloud { provider, platform, host_type: None, instance_id: None };

    if is(&dmi.sys_vendor, "Amazon EC2") {
        return Some(Cloud {
            host_type: dmi.product_name.clone().filter(|p| looks_like_instance_type(p)),
            instance_id: dmi.board_asset_tag.clone().filter(|t| looks_like_instance_id(t)),
            ..cloud("aws", "aws_ec2")
        });
    }
    let xen_amazon = dmi.bios_version.as_deref().is_some_and(|v| v.to_ascii_lowercase().ends_with(".amazon"));
    let ec2_uuid = match (&dmi.product_uuid, &dmi.product_serial) {
        (Some(u), Some(s)) => u.to_ascii_lowercase().starts_with("ec2") && u.eq_ignore_ascii_case(s),
        _ => false,
    };
    if xen_amazon || ec2_uuid {
        return Some(cloud("aws", "aws_ec2"));
    }
    if is(&dmi.product_name, "Google Compute Engine") || dmi.product_serial.as_deref().is_some_and(|s| s.starts_with("GoogleCloud-")) {
        return Some(cloud("gcp", "gcp_compute_engine"));
    }
    if is(&dmi.chassis_asset_tag, AZURE_CHASSIS_ASSET_TAG) {
        return Some(cloud("azure", "azure_vm"));
    }
    if is(&dmi.product_name, "Alibaba Cloud ECS") {
        return Some(cloud("alibaba_cloud", "alibaba_cloud_ecs"));
    }
    if is(&dmi.chassis_asset_tag, "OracleCloud.com") {
        return Some(cloud("oracle_cloud", "oracle_cloud_compute"));
    }
    None
}

/// `m5.large`, `c7gn.16xlarge`, `u-6tb1.metal`, `mac2-m2.metal`: family `.` size.
fn looks_like_instance_type(s: &str) -> bool {
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    matches!(s.split_once('.'), Some((family, size)) if ok(family) && ok(size))
}

/// `i-` and 8 or 17 hex digits.
fn looks_like_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| matches!(h.len(), 8 | 17) && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Cloud attributes from DMI; nothing for bare metal or a plain hypervisor.
pub fn detect(input: &DetectInput) -> Detected {
    let mut out = Detected::default();
    if let Some(c) = classify(&Dmi::read(input.paths)) {
        out.set("cloud.provider", Some(c.provider));
        out.set("cloud.platform", Some(c.platform));
        out.set("host.type", c.host_type);
        out.set("host.id", c.instance_id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::fixture;

    fn classify_case(case: &str) -> Option<Cloud> {
        classify(&Dmi::read(&fixture(case)))
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn nitro_ec2_gives_aws_the_instance_type_and_the_instance_id() {
        let c = classify_case("aws-ec2").unwrap();
        assert_eq!((c.provider, c.platform), ("aws", "aws_ec2"));
        assert_eq!(c.host_type.as_deref(), Some("m5.large"));
        assert_eq!(c.instance_id.as_deref(), Some("i-0af01c0123456789a"));
    }

    #[test]
    fn gce_gives_gcp_without_a_host_type() {
        let c = classify_case("gcp").unwrap();
        assert_eq!((c.provider, c.platform, c.host_type, c.instance_id), ("gcp", "gcp_compute_engine", None, None));
    }

    #[test]
    fn the_azure_asset_tag_gives_azure() {
        let c = classify_case("azure").unwrap();
        assert_eq!((c.provider, c.platform, c.host_type), ("azure", "azure_vm", None));
    }

    #[test]
    fn qemu_kvm_and_bare_metal_are_not_clouds() {
        assert_eq!(classify_case("qemu-kvm"), None);
        assert_eq!(classify_case("bare-host"), None);
        assert_eq!(classify_case("this-vm"), None);
    }

    #[test]
    fn on_premises_hyper_v_without_the_asset_tag_is_not_azure() {
        let dmi = Dmi {
            sys_vendor: s("Microsoft Corporation"),
            product_name: s("Virtual Machine"),
            chassis_asset_tag: s("0000-0000-0000-0000-0000-0000-00"),
            ..Dmi::default()
        };
        assert_eq!(classify(&dmi), None);
    }

    #[test]
    fn xen_ec2_is_told_by_its_bios_version() {
        let dmi = Dmi { sys_vendor: s("Xen"), product_name: s("HVM domU"), bios_vendor: s("Xen"), bios_version: s("4.11.amazon"), ..Dmi::default() };
        let c = classify(&dmi).unwrap();
        assert_eq!((c.provider, c.host_type), ("aws", None));
    }

    #[test]
    fn an_ec2_looking_uuid_alone_is_not_aws() {
        let dmi = Dmi { product_uuid: s("ec2e1916-9099-7caf-fd21-012345abcdef"), ..Dmi::default() };
        assert_eq!(classify(&dmi), None);
        let dmi = Dmi { product_serial: dmi.product_uuid.clone(), ..dmi };
        assert_eq!(classify(&dmi).unwrap().provider, "aws");
    }

    #[test]
    fn a_chromebook_is_not_gcp() {
        let dmi = Dmi { sys_vendor: s("Google"), product_name: s("Eve"), ..Dmi::default() };
        assert_eq!(classify(&dmi), None);
    }

    #[test]
    fn alibaba_oracle_and_hetzner_follow_the_table() {
        let ali = Dmi { sys_vendor: s("Alibaba Cloud"), product_name: s("Alibaba Cloud ECS"), ..Dmi::default() };
        assert_eq!(classify(&ali).unwrap().platform, "alibaba_cloud_ecs");
        let oci = Dmi { chassis_asset_tag: s("OracleCloud.com"), ..Dmi::default() };
        assert_eq!(classify(&oci).unwrap().provider, "oracle_cloud");
        let hetzner = Dmi { sys_vendor: s("Hetzner"), product_name: s("vServer"), ..Dmi::default() };
        assert_eq!(classify(&hetzner), None);
    }

    #[test]
    fn a_non_instance_type_product_name_gives_no_host_type() {
        let dmi = Dmi { sys_vendor: s("Amazon EC2"), product_name: s("Not Specified"), board_asset_tag: s("Amazon EC2"), ..Dmi::default() };
        let c = classify(&dmi).unwrap();
        assert_eq!((c.host_type, c.instance_id), (None, None));
        assert!(looks_like_instance_type("u-6tb1.metal"));
        assert!(looks_like_instance_id("i-1a2b3c4d"));
    }
}
