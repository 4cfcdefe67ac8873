//! Memory stays bounded under parallel large writes: the server's peak RSS (VmHWM) stays
//! under 256 MiB with 8 parallel 64 MiB part uploads, and with 64 parallel 1 MiB PUTs. The
//! request-buffer budget (limits::REQUEST_BUFFER_BUDGET) is what holds it there.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use common::*;

const LIMIT_MIB: u64 = 256;

fn peak_rss_mib(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_parallel_64_mib_parts_stay_under_256_mib() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mem").send().await.unwrap();
    let up = c
        .create_multipart_upload()
        .bucket("mem")
        .key("big")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let part = Bytes::from(data(64 << 20, 3));
    let mut tasks = Vec::new();
    for n in 1..=8 {
        let (c, id, part) = (c.clone(), id.clone(), part.clone());
        tasks.push(tokio::spawn(async move {
            c.upload_part()
                .bucket("mem")
                .key("big")
                .upload_id(id)
                .part_number(n)
                .body(ByteStream::from(part))
                .send()
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let peak = peak_rss_mib(&s);
    println!("8 parallel 64 MiB parts: peak RSS {peak} MiB");
    assert!(peak < LIMIT_MIB, "peak RSS {peak} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_parallel_1_mib_puts_stay_under_256_mib() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mem").send().await.unwrap();
    let body = Bytes::from(data(1 << 20, 4));
    for round in 0..4 {
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (c, body) = (c.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                c.put_object()
                    .bucket("mem")
                    .key(format!("{round}/{i}"))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let peak = peak_rss_mib(&s);
    println!("64 parallel 1 MiB PUTs: peak RSS {peak} MiB");
    assert!(peak < LIMIT_MIB, "peak RSS {peak} MiB");
}
