//! Tests of the PodResources client: the mapping, and a PodResources gRPC server built from the
//! vendored proto on a temporary unix socket, in front of the fake GPUs.

use super::pb::{ContainerDevices, ContainerResources, ListPodResourcesRequest, ListPodResourcesResponse, PodResources};
use super::*;
use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
use crate::collectors::gpu::rig::*;
use crate::collectors::gpu::GpuConfig;
use crate::collectors::testutil::{value, Point};
use crate::units::{ConfigDuration, HostPaths};
use std::convert::Infallible;
use tonic::codegen::{http, BoxFuture, StdError};

fn pod(name: &str, ns: &str, container: &str, resource: &str, ids: &[&str]) -> PodResources {
    PodResources {
        name: name.into(),
        namespace: ns.into(),
        containers: vec![ContainerResources {
            name: container.into(),
            devices: vec![ContainerDevices { resource_name: resource.into(), device_ids: ids.iter().map(|s| s.to_string()).collect() }],
        }],
    }
}

fn two_pods() -> ListPodResourcesResponse {
    ListPodResourcesResponse {
        pod_resources: vec![
            pod("train-0", "ml", "trainer", "nvidia.com/gpu", &[UUID0]),
            pod("infer-7f9c", "serving", "server", "nvidia.com/gpu", &[UUID1]),
            pod("web", "default", "nginx", "example.com/foo", &["foo-1"]),
        ],
    }
}

/// The PodResourcesLister service, written out as tonic's codegen would, answering `List`.
#[derive(Clone)]
struct Lister(ListPodResourcesResponse);

impl tonic::server::NamedService for Lister {
    const NAME: &'static str = "v1.PodResourcesLister";
}

struct ListCall(ListPodResourcesResponse);

impl tonic::server::UnaryService<ListPodResourcesRequest> for ListCall {
    type Response = ListPodResourcesResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;
    fn call(&mut self, _: tonic::Request<ListPodResourcesRequest>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(self.0.clone())))
    }
}

impl<B> tower_service::Service<http::Request<B>> for Lister
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let answer = self.0.clone();
        Box::pin(async move {
            if req.uri().path() != LIST {
                return Ok(tonic::Status::unimplemented("").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(ListCall(answer), req).await)
        })
    }
}

/// A PodResources server on a unix socket in a temporary directory, stopped when dropped.
struct Kubelet {
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Kubelet {
    fn start(answer: ListPodResourcesResponse) -> Kubelet {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let incoming = tonic::codegen::tokio_stream::wrappers::UnixListenerStream::new(listener);
                let _ = tonic::transport::Server::builder()
                    .serve_with_incoming_shutdown(Lister(answer), incoming, async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Kubelet { dir, stop: Some(stop), thread: Some(thread) }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("kubelet.sock")
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn rig_on(socket: PathBuf, fake: FakeNvml) -> Rig {
    let config = GpuConfig { pod_resources_socket: Some(socket), pcie_interval: ConfigDuration::secs(0), ..GpuConfig::default() };
    Rig::with(fake, config, HostPaths::under("/nonexistent-metricsd-test"))
}

/// Ticks (a second apart on the fake clock) until `done`, for at most 10 s of real time.
fn tick_until(r: &mut Rig, done: impl Fn(&[Point]) -> bool) -> Vec<Point> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut p = r.tick();
    while !done(&p) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        p = r.after(1);
    }
    p
}

fn with_pod(i: usize, pod: &'static str, ns: &'static str, c: &'static str) -> Vec<(&'static str, &'static str)> {
    at(i, &[("k8s.pod.name", pod), ("k8s.namespace.name", ns), ("k8s.container.name", c)])
}

#[test]
fn assignments_map_gpu_and_mig_devices_to_the_one_container_holding_them() {
    let mut r = two_pods();
    r.pod_resources.push(pod("small", "ml", "tiny", "nvidia.com/mig-1g.10gb", &["MIG-aaaa"]));
    // Time-sliced replicas of one GPU, held by two pods: shared, so no pod for it.
    r.pod_resources.push(pod("a", "ml", "x", "nvidia.com/gpu", &["GPU-shared::0"]));
    r.pod_resources.push(pod("b", "ml", "y", "nvidia.com/gpu", &["GPU-shared::1"]));
    // Two replicas in one container are still that container's.
    r.pod_resources.push(pod("c", "ml", "z", "nvidia.com/gpu.shared", &["GPU-mine::0", "GPU-mine::1"]));
    let a = assignments(&r);
    assert_eq!(&*a[UUID0].pod, "train-0");
    assert_eq!((&*a[UUID1].namespace, &*a[UUID1].container), ("serving", "server"));
    assert_eq!(&*a["MIG-aaaa"].container, "tiny");
    assert_eq!(&*a["GPU-mine"].pod, "c");
    assert!(!a.contains_key("GPU-shared") && !a.contains_key("foo-1"), "{a:?}");
    assert_eq!(a.len(), 4);
}

#[test]
fn gpu_points_carry_the_pod_and_container_the_kubelet_allocated_them_to() {
    let kubelet = Kubelet::start(two_pods());
    let mut r = rig_on(kubelet.socket(), FakeNvml::with(vec![FakeGpu::h100(0), FakeGpu::h100(1)]));
    let (p, logs) = capture_logs(|| {
        tick_until(&mut r, |p| {
            value(p, "hw.power", &with_pod(0, "train-0", "ml", "trainer")).is_some()
                && value(p, "hw.power", &with_pod(1, "infer-7f9c", "serving", "server")).is_some()
        })
    });
    // Idle GPUs (no process) still carry their pod, on every GPU point.
    assert_eq!(value(&p, "hw.power", &with_pod(0, "train-0", "ml", "trainer")), Some(115.35));
    assert_eq!(value(&p, "hw.power", &with_pod(1, "infer-7f9c", "serving", "server")), Some(115.35));
    let mut temp = with_pod(0, "train-0", "ml", "trainer");
    temp.push(("hw.sensor_location", "gpu"));
    assert_eq!(value(&p, "hw.temperature", &temp), Some(36.0));
    assert!(p.iter().filter(|p| p.0 == "hw.power").all(|p| p.1.iter().any(|(k, _)| k == "k8s.pod.name")));
    assert!(logs.contains("GPU pod assignments read from the kubelet's PodResources API"), "{logs}");
    assert!(!logs.contains("WARN"), "{logs}");
}

#[test]
fn a_configured_socket_that_is_missing_is_one_warning_and_gpu_metrics_flow_without_pods() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rig_on(dir.path().join("absent.sock"), FakeNvml::with(vec![FakeGpu::h100(0)]));
    let (p, logs) = capture_logs(|| tick_for(&mut r, Duration::from_millis(300)));
    assert_eq!(value(&p, "hw.power", &at(0, &[])), Some(115.35));
    assert_eq!(logs.matches("no kubelet PodResources socket at").count(), 1, "{logs}");
    assert!(logs.contains("WARN"), "{logs}");
}

/// Ticks (a second apart on the fake clock) for `d` of real time, giving the thread time to try.
fn tick_for(r: &mut Rig, d: Duration) -> Vec<Point> {
    let until = Instant::now() + d;
    let mut p = r.tick();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        p = r.after(1);
    }
    p
}

#[test]
fn a_socket_that_answers_garbage_is_a_clear_error_and_gpu_metrics_flow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubelet.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        // Answer the first connection with bytes that are no HTTP/2, then close.
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nnot grpc at all\0\xff\xfe");
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let e = rt.block_on(list(&path, Duration::from_secs(5))).unwrap_err();
    server.join().unwrap();
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(!matches!(e, PodResourcesError::Missing { .. } | PodResourcesError::Timeout { .. }), "{text}");

    // The collector on that socket (now closed): GPU metrics without pods.
    let mut r = rig_on(path, FakeNvml::with(vec![FakeGpu::h100(0)]));
    let (p, logs) = capture_logs(|| tick_for(&mut r, Duration::from_millis(300)));
    assert_eq!(value(&p, "hw.power", &at(0, &[])), Some(115.35));
    assert_eq!(logs.matches("GPU pod assignments unavailable").count(), 1, "{logs}");
}

#[test]
fn a_default_socket_that_is_missing_logs_nothing_above_debug() {
    let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
    let mut r = Rig::new(fake);
    let (p, logs) = capture_logs(|| tick_for(&mut r, Duration::from_millis(200)));
    assert_eq!(value(&p, "hw.power", &at(0, &[])), Some(115.35));
    assert!(!logs.contains("PodResources") && !logs.contains("WARN"), "{logs}");
}
