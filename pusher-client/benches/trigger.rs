//! Throughput of `Client::trigger_event` against a local Pusher-compatible server
//! (Sockudo), sequential and with 64 requests in flight, plus the cost of
//! signing one request. Run through `pusher-client/bench/run.sh`, which also runs
//! the official Node library against the same server and prints the ratios.
//!
//! Environment: SOCKUDO_HOST/PORT/APP_ID/KEY/SECRET (as for the tests),
//! BENCH_SEQUENTIAL (default 5000), BENCH_CONCURRENT (default 20000),
//! BENCH_IN_FLIGHT (default 64), BENCH_H2C (set: speak HTTP/2 without negotiation,
//! see `ClientBuilder::http2_prior_knowledge`). Prints one `RESULT name value unit`
//! line per figure.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pusher_client::{Client, Event};

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn bench_signing() {
    let body = br#"{"name":"progress","channels":["workflow-run-0193"],"data":"{\"step\":\"send_welcome_email\",\"status\":\"completed\",\"attempt\":1}"}"#;
    let iterations = 200_000u32;
    // Warm up.
    for i in 0..10_000u64 {
        black_box(pusher_client::signing::signed_query(
            "278d425bdf160c739803",
            "7ad3773142a6692b25b8",
            "POST",
            "/apps/3/events",
            &[],
            Some(body),
            1_700_000_000 + i,
        ));
    }
    let start = Instant::now();
    for i in 0..u64::from(iterations) {
        black_box(pusher_client::signing::signed_query(
            black_box("278d425bdf160c739803"),
            black_box("7ad3773142a6692b25b8"),
            "POST",
            "/apps/3/events",
            &[],
            Some(black_box(body)),
            1_700_000_000 + i,
        ));
    }
    let per = start.elapsed() / iterations;
    println!(
        "RESULT sign_request_ns {} ns  (body_md5 + sorted params + HMAC-SHA256 + query encoding, {}-byte body)",
        per.as_nanos(),
        body.len()
    );
}

async fn bench_triggers(
    client: &Client,
    tag: &str,
    sequential: usize,
    concurrent: usize,
    in_flight: usize,
) {
    let event = Event::new(
        ["bench-channel"],
        "progress",
        r#"{"step":"send_welcome_email","status":"completed","attempt":1}"#,
    );
    // Warm up the connection pool.
    for _ in 0..200 {
        client.trigger_event(&event).await.expect("warm-up trigger");
    }

    let start = Instant::now();
    for _ in 0..sequential {
        client.trigger_event(&event).await.expect("trigger");
    }
    let rate = sequential as f64 / start.elapsed().as_secs_f64();
    println!(
        "RESULT rust{tag}_sequential_per_sec {rate:.0} triggers/s  ({sequential} triggers, one at a time)"
    );

    let start = Instant::now();
    let mut failures = 0usize;
    let mut results = futures::stream::iter(0..concurrent)
        .map(|_| client.trigger_event(&event))
        .buffer_unordered(in_flight);
    while let Some(r) = results.next().await {
        if r.is_err() {
            failures += 1;
        }
    }
    let rate = concurrent as f64 / start.elapsed().as_secs_f64();
    assert_eq!(failures, 0, "some concurrent triggers failed");
    println!(
        "RESULT rust{tag}_concurrent_per_sec {rate:.0} triggers/s  ({concurrent} triggers, {in_flight} in flight)"
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes
    // nothing and should stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    bench_signing();
    if !full {
        return;
    }
    let h2c = std::env::var("BENCH_H2C").is_ok_and(|v| !v.is_empty() && v != "0");
    let host = var("SOCKUDO_HOST", "127.0.0.1");
    let port: u16 = var("SOCKUDO_PORT", "16001").parse().expect("SOCKUDO_PORT");
    let client = Client::builder()
        .app_id(var("SOCKUDO_APP_ID", "pusher-client-test"))
        .key(var("SOCKUDO_KEY", "pusher-client-key"))
        .secret(var("SOCKUDO_SECRET", "pusher-client-secret"))
        .host(host)
        .port(port)
        .use_tls(false)
        .timeout(Duration::from_secs(10))
        .http2_prior_knowledge(h2c)
        .build()
        .expect("client");
    let sequential: usize = var("BENCH_SEQUENTIAL", "5000").parse().unwrap();
    let concurrent: usize = var("BENCH_CONCURRENT", "20000").parse().unwrap();
    let in_flight: usize = var("BENCH_IN_FLIGHT", "64").parse().unwrap();
    // One client thread, like the single-threaded Node library it is compared with.
    let rt = (if std::env::var("BENCH_MT").is_ok() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    })
    .enable_all()
    .build()
    .unwrap();
    let tag = if h2c { "_h2c" } else { "" };
    rt.block_on(bench_triggers(
        &client, tag, sequential, concurrent, in_flight,
    ));
}
