//! Reload when the config file changes, as Kubernetes changes a mounted ConfigMap: a new
//! timestamped directory, and the `..data` symlink swapped to it by renaming a new symlink
//! over it. The new route is taken, a bad config leaves the old one in force, and neither a
//! request in flight nor a kept-alive connection is dropped.

mod sidecar_support;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sidecar_support::*;
use tokio::sync::Notify;

/// A ConfigMap volume with one key, `sidecar.toml`, laid out as kubelet lays it out.
struct ConfigMapVolume {
    dir: tempfile::TempDir,
    /// The timestamped directory `..data` points to now.
    current: Option<PathBuf>,
    updates: u32,
}

impl ConfigMapVolume {
    fn new(text: &str) -> ConfigMapVolume {
        let mut volume = ConfigMapVolume {
            dir: tempfile::tempdir().unwrap(),
            current: None,
            updates: 0,
        };
        volume.update(text);
        // The key's own path is a symlink through `..data`, made once.
        std::os::unix::fs::symlink("..data/sidecar.toml", volume.path()).unwrap();
        volume
    }

    /// The path the sidecar is given.
    fn path(&self) -> PathBuf {
        self.dir.path().join("sidecar.toml")
    }

    /// Writes `text` into a new timestamped directory and swaps `..data` to it atomically.
    fn update(&mut self, text: &str) {
        self.updates += 1;
        let name = format!("..2026_12_04_18_30_{:02}.{:09}", self.updates, self.updates);
        let new = self.dir.path().join(&name);
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("sidecar.toml"), text).unwrap();
        let temporary = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &temporary).unwrap();
        std::fs::rename(&temporary, self.dir.path().join("..data")).unwrap();
        if let Some(old) = self.current.replace(new) {
            std::fs::remove_dir_all(old).unwrap();
        }
    }
}

fn route_to(backend: impl std::fmt::Display, version: &str) -> String {
    format!(
        "[outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.route]]\nhost = \"svcb\"\n\
         backends = [{{ address = \"{backend}\", version = \"{version}\" }}]\n"
    )
}

/// An app answering `app: NAME`; `/slow` tells `arrived` and answers once `release`d.
async fn holding_app(name: &'static str, arrived: Arc<Notify>, release: Arc<Notify>) -> String {
    let addr = serve(move |request: Request<Incoming>| {
        let (arrived, release) = (arrived.clone(), release.clone());
        async move {
            if request.uri().path() == "/slow" {
                arrived.notify_one();
                release.notified().await;
            }
            Response::new(Full::new(Bytes::from(format!("app: {name}\n"))))
        }
    })
    .await;
    addr.to_string()
}

/// One HTTP/1.1 connection to `addr`, kept open: a request on it fails if it was closed.
async fn keep_alive(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// GET /notify for svcb over `sender`'s connection; answers which app served it.
async fn which_app(sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>) -> String {
    sender.ready().await.expect("the kept connection is open");
    let request = Request::get("/notify")
        .header("host", "svcb")
        .body(Full::default())
        .unwrap();
    let response = sender.send_request(request).await.expect("an answer");
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    echoed_header(&String::from_utf8_lossy(&body), "app").unwrap_or_default()
}

#[test]
fn a_configmap_update_reloads_without_dropping_connections() {
    let rt = runtime();
    let (arrived, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let v1 = rt.block_on(holding_app("v1", arrived.clone(), release.clone()));
    let v2 = rt.block_on(echo_app("v2"));
    let mut volume = ConfigMapVolume::new(&route_to(&v1, "v1"));
    let sidecar = Sidecar::start(&["--config", volume.path().to_str().unwrap()]);
    let out = sidecar.outbound();

    let mut kept = rt.block_on(keep_alive(out));
    assert_eq!(rt.block_on(which_app(&mut kept)), "v1");
    // A request held at v1 across the reload.
    let in_flight = rt.spawn(get(out, "/slow", &[("host", "svcb")]));
    rt.block_on(arrived.notified());

    volume.update(&route_to(v2, "v2"));
    sidecar.stderr_line("config reloaded");
    assert_eq!(rt.block_on(which_app(&mut kept)), "v2");
    release.notify_one();
    let (response, text) = rt.block_on(in_flight).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(echoed_header(&text, "app").as_deref(), Some("v1"));

    // A config that does not parse, then one that is invalid: each is rejected, v2 stays.
    volume.update("[outbound]\nlisten = \"127.0.0.1:0\"\nroutes = 3\n");
    let rejected = sidecar.stderr_line("reload rejected");
    assert!(rejected.contains("routes"), "{rejected}");
    assert_eq!(rt.block_on(which_app(&mut kept)), "v2");
    volume.update(&route_to("nowhere", "v3"));
    let rejected = sidecar.stderr_line("reload rejected");
    assert!(rejected.contains("address"), "{rejected}");
    assert_eq!(rt.block_on(which_app(&mut kept)), "v2");

    // And a good one again is taken, on the same connection still.
    volume.update(&route_to(&v1, "v1"));
    sidecar.stderr_line("config reloaded");
    assert_eq!(rt.block_on(which_app(&mut kept)), "v1");
    let connections = sidecar.metric("functrace_sidecar_connections_total");
    assert_eq!(
        connections, 2.0,
        "the kept connection and the held request's"
    );
    let (status, _) = sidecar.stop();
    assert!(status.success());
}

/// A reload that makes a route speak HTTP/2 to its upstream takes the listener off the own
/// HTTP/1.1 path (which speaks HTTP/1.1 upstream only): a connection kept open across it
/// goes on with hyper's server from its next request, and that request reaches the new
/// upstream, over HTTP/2, on the same connection.
#[test]
fn a_reload_to_an_http2_upstream_keeps_the_open_connections_serving() {
    let rt = runtime();
    let v1 = rt.block_on(echo_app("v1"));
    let v2 = rt.block_on(serve(|request: Request<Incoming>| async move {
        let text = format!("app: v2\nversion: {:?}\n", request.version());
        Response::new(Full::new(Bytes::from(text)))
    }));
    let mut volume = ConfigMapVolume::new(&route_to(v1, "v1"));
    let sidecar = Sidecar::start(&["--config", volume.path().to_str().unwrap()]);
    let out = sidecar.outbound();

    let mut kept = rt.block_on(keep_alive(out));
    assert_eq!(rt.block_on(which_app(&mut kept)), "v1");
    volume.update(&format!("{}protocol = \"http2\"\n", route_to(v2, "v2")));
    sidecar.stderr_line("config reloaded");
    for _ in 0..2 {
        let text = rt.block_on(async {
            kept.ready().await.expect("the kept connection is open");
            let request = Request::post("/after")
                .header("host", "svcb")
                .body(Full::new(Bytes::from_static(b"a body")))
                .unwrap();
            let response = kept.send_request(request).await.expect("an answer");
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8_lossy(&body).into_owned()
        });
        assert_eq!(echoed_header(&text, "app").as_deref(), Some("v2"), "{text}");
        assert_eq!(echoed_header(&text, "version").as_deref(), Some("HTTP/2.0"));
    }
    let connections = sidecar.metric("functrace_sidecar_connections_total");
    assert_eq!(connections, 1.0, "the kept connection only");
    let (status, spans) = sidecar.stop();
    assert!(status.success());
    assert_eq!(spans.len(), 3, "one span per request: {spans:#?}");
}

/// Spans name the service the config names when the request came in, lowercase: the
/// reporter's own (the one the sidecar started with), then, after a reload that renames it,
/// the new one, though the reporter was made with the first.
#[test]
fn a_reload_that_renames_the_service_renames_it_in_the_spans_that_follow() {
    let rt = runtime();
    let app = rt.block_on(echo_app("app"));
    let config = |service: &str| format!("service = \"{service}\"\n{}", route_to(app, "v1"));
    let mut volume = ConfigMapVolume::new(&config("Checkout"));
    let sidecar = Sidecar::start(&["--config", volume.path().to_str().unwrap()]);
    let out = sidecar.outbound();
    let mut kept = rt.block_on(keep_alive(out));
    assert_eq!(rt.block_on(which_app(&mut kept)), "app");
    volume.update(&config("Payments"));
    sidecar.stderr_line("config reloaded");
    assert_eq!(rt.block_on(which_app(&mut kept)), "app");
    let (status, spans) = sidecar.stop();
    assert!(status.success());
    let services: Vec<Option<&str>> = spans
        .iter()
        .map(|span| span.local_endpoint.service_name.as_deref())
        .collect();
    assert_eq!(services, [Some("checkout"), Some("payments")], "{spans:#?}");
}
