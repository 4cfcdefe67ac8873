//! A node that answers with far more than a call can return (a compromised or buggy node)
//! cannot make the gateway buffer it: the read stops at the call's limit and fails.

use bytes::Bytes;
use coffre_cluster::identity::{init_ca, issue, Role};
use coffre_cluster::{Identity, Location, RemoteShardStore};
use coffre_data::ShardStore;
use coffre_types::{ShardId, VersionId};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many bytes the rogue node managed to send, all answers together.
static SENT: AtomicU64 = AtomicU64::new(0);

type Answer = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn endless() -> Answer {
    // 1 GiB in 1 MiB frames, counted as the gateway pulls them.
    let frames = futures_util::stream::iter((0..1024).map(|_| {
        SENT.fetch_add(1 << 20, Ordering::Relaxed);
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![0u8; 1 << 20])))
    }));
    StreamBody::new(frames).boxed()
}

async fn rogue(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Answer>, std::convert::Infallible> {
    let body = match req.uri().path() {
        "/stat" => http_body_util::Full::new(Bytes::from_static(b"0 0 100 100"))
            .map_err(|never| match never {})
            .boxed(),
        _ => endless(),
    };
    Ok(hyper::Response::new(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_a_node_are_bounded() {
    let d = tempfile::tempdir().unwrap();
    let ca = d.path().join("ca");
    init_ca(&ca).unwrap();
    let loc = Location {
        country: "FR".into(),
        site: "s".into(),
        zone: "z".into(),
    };
    issue(&ca, "rogue", &loc, Role::Node, &d.path().join("rogue")).unwrap();
    issue(&ca, "gw", &loc, Role::Gateway, &d.path().join("gw")).unwrap();
    let node = Identity::load(&d.path().join("rogue")).unwrap();
    let gw = Identity::load(&d.path().join("gw")).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(node.server_config().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), hyper::service::service_fn(rogue))
                    .await;
            });
        }
    });

    let store = Arc::new(
        RemoteShardStore::connect(&gw, &format!("https://{addr}"))
            .await
            .unwrap(),
    );
    let id = ShardId {
        version: VersionId::random(),
        part: 0,
        stripe: 0,
        index: 0,
    };
    // Each call is tried twice; each answer offers 1 GiB. The gateway stops near the cap of the
    // call (plus HTTP/2's 32 MiB window) every time.
    assert!(store.get(id).await.is_err(), "a shard larger than any shard is refused");
    let after_get = SENT.load(Ordering::Relaxed);
    assert!(after_get < 2 * (100 << 20), "a shard GET pulled {after_get} bytes");
    assert!(store.list().await.is_err(), "a listing larger than the cap is refused");
    let listing = SENT.load(Ordering::Relaxed) - after_get;
    assert!(listing < 2 * (560 << 20), "a listing pulled {listing} bytes");
}
