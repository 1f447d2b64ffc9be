//! Names of containers outside Kubernetes from the runtimes' own state files below the host
//! root (`HOST_ROOT`), read once when a container is first seen — no runtime API call:
//!
//! ```text
//! /var/lib/docker/containers/<id>/config.v2.json       {"Name":"/web","Config":{"Image":"nginx:1.27",…},…}   Docker
//! /var/lib/containers/storage/overlay-containers/containers.json
//!                                                       [{"id":"<id>","names":["web"],"image":"<image id>",…}]  podman, CRI-O
//! /var/lib/containers/storage/overlay-images/images.json
//!                                                       [{"id":"<image id>","names":["docker.io/library/nginx:1.27"]}]
//! /etc/pve/lxc/<vmid>.conf                              hostname: web01                                           Proxmox LXC
//! /etc/pve/qemu-server/<vmid>.conf                      name: db01                                                Proxmox QEMU
//! ```
//!
//! containerd keeps its containers in a bbolt database (`meta.db`), not a plain file: containers
//! of nerdctl or `ctr` outside Kubernetes come with their ID only. Rootless podman's state is
//! below the user's home and is not read. Each file is read up to [`MAX_STATE_FILE`] bytes; a
//! file that is missing, larger or not the expected JSON gives no name (logged at debug).

use crate::units::HostPaths;
use serde::Deserialize;
use std::io::Read;
use std::path::Path;

/// The most bytes of one state file read.
pub const MAX_STATE_FILE: u64 = 8 << 20;

/// A container's or guest's name and image, where its state files have them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub name: Option<String>,
    pub image: Option<String>,
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_STATE_FILE + 1).read_to_end(&mut buf).ok()?;
    if buf.len() as u64 > MAX_STATE_FILE {
        tracing::debug!(path = %path.display(), limit = MAX_STATE_FILE, "Runtime state file too large; its container keeps its ID only");
        return None;
    }
    Some(buf)
}

/// Docker's `config.v2.json` of container `id`: `Name` (without its `/`) and `Config.Image`.
pub fn docker(paths: &HostPaths, id: &str) -> Names {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "Name", default)]
        name: Option<String>,
        #[serde(rename = "Config", default)]
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "Image", default)]
        image: Option<String>,
    }
    let path = paths.root(&format!("var/lib/docker/containers/{id}/config.v2.json"));
    let Some(bytes) = read_bounded(&path) else { return Names::default() };
    match serde_json::from_slice::<Config>(&bytes) {
        Ok(c) => Names { name: c.name.map(|n| n.trim_start_matches('/').to_owned()), image: c.config.and_then(|i| i.image) },
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "Docker state file not understood; the container keeps its ID only");
            Names::default()
        }
    }
}

/// containers/storage's (podman's, CRI-O's) `containers.json` and `images.json`.
pub fn podman(paths: &HostPaths, id: &str) -> Names {
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        image: Option<String>,
    }
    let list = |rel: &str| -> Vec<Entry> {
        let path = paths.root(rel);
        read_bounded(&path)
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| tracing::debug!(path = %path.display(), error = %e, "containers/storage state file not understood")).ok()
            })
            .unwrap_or_default()
    };
    let containers = list("var/lib/containers/storage/overlay-containers/containers.json");
    let Some(c) = containers.into_iter().find(|c| c.id == id) else { return Names::default() };
    let image = c.image.as_ref().and_then(|image_id| {
        list("var/lib/containers/storage/overlay-images/images.json").into_iter().find(|i| &i.id == image_id).and_then(|i| i.names.into_iter().next())
    });
    Names { name: c.names.into_iter().next(), image: image.or(c.image) }
}

/// The guest's name from its Proxmox config: `hostname:` (LXC) or `name:` (QEMU), in the
/// current configuration (before the first `[snapshot]` section).
pub fn proxmox(paths: &HostPaths, vmid: &str, runtime: &str) -> Names {
    let (rel, key) = match runtime {
        "lxc" => (format!("etc/pve/lxc/{vmid}.conf"), "hostname:"),
        _ => (format!("etc/pve/qemu-server/{vmid}.conf"), "name:"),
    };
    let Some(bytes) = read_bounded(&paths.root(&rel)) else { return Names::default() };
    let text = String::from_utf8_lossy(&bytes);
    let name = text.lines().take_while(|l| !l.starts_with('[')).find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    Names { name, image: None }
}

/// The names of a container or guest of `runtime` from its state files.
pub fn names(paths: &HostPaths, runtime: Option<&str>, id: &str) -> Names {
    match runtime {
        Some("docker") => docker(paths, id),
        Some("podman" | "cri-o") => podman(paths, id),
        Some(rt @ ("lxc" | "qemu")) => proxmox(paths, id, rt),
        _ => Names::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::write;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_names_come_from_config_v2_json_without_the_slash() {
        let t = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(t.path());
        write(
            &t,
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            r#"{"ID":"x","Name":"/web","Config":{"Hostname":"h","Image":"nginx:1.27","Env":["A=1"]},"State":{"Running":true}}"#,
        );
        assert_eq!(docker(&paths, ID), Names { name: Some("web".into()), image: Some("nginx:1.27".into()) });
        write(&t, &format!("var/lib/docker/containers/{ID}/config.v2.json"), "{not json");
        assert_eq!(docker(&paths, ID), Names::default());
        assert_eq!(docker(&paths, "missing"), Names::default());
    }

    #[test]
    fn podman_names_and_images_come_from_containers_storage() {
        let t = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(t.path());
        write(
            &t,
            "var/lib/containers/storage/overlay-containers/containers.json",
            &format!(r#"[{{"id":"other","names":["x"]}},{{"id":"{ID}","names":["api"],"image":"img1","layer":"l"}}]"#),
        );
        write(&t, "var/lib/containers/storage/overlay-images/images.json", r#"[{"id":"img1","names":["docker.io/library/redis:7"]}]"#);
        assert_eq!(names(&paths, Some("podman"), ID), Names { name: Some("api".into()), image: Some("docker.io/library/redis:7".into()) });
    }

    #[test]
    fn proxmox_names_come_from_the_current_section_of_the_guest_config() {
        let t = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(t.path());
        write(&t, "etc/pve/lxc/101.conf", "arch: amd64\nhostname: web01\nmemory: 512\n\n[snap1]\nhostname: old\n");
        write(&t, "etc/pve/qemu-server/103.conf", "boot: order=scsi0\nname: db01\n");
        assert_eq!(names(&paths, Some("lxc"), "101").name.as_deref(), Some("web01"));
        assert_eq!(names(&paths, Some("qemu"), "103").name.as_deref(), Some("db01"));
        assert_eq!(names(&paths, Some("qemu"), "999").name, None);
    }
}
