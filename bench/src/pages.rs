//! What users wait for besides events: the run page's server-side render and the WASM they
//! download before the page is live.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::scenarios::{percentile, publish, Figure};
use crate::target::{Result, Target};

/// Renders of the run page timed for the p50.
const RENDERS: usize = 200;

/// p50 of `GET /w/{id}` (the whole server-rendered page) for a workflow with 20 events, ms.
pub async fn ssr_p50(target: &Target) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    publish(target, &topic, 20).await?;
    let http = reqwest::Client::new();
    let url = format!("http://{}/w/{topic}", target.addr());
    let mut times = Vec::with_capacity(RENDERS);
    let mut bytes = 0;
    for _ in 0..RENDERS {
        let started = Instant::now();
        let page = http
            .get(&url)
            .bearer_auth(target.token())
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !page.contains("data-seq=\"20\"") {
            return Err("the rendered page does not hold the 20th event".into());
        }
        bytes = page.len();
    }
    let note = format!(
        "p99 {:.2} ms, {bytes} bytes",
        percentile(times.clone(), 0.99)
    );
    Ok((percentile(times, 0.5), note))
}

/// The release WASM compressed with `gzip -9`, KB (1000 bytes).
pub fn wasm_gzip_kb(site: &Path) -> Figure {
    let value = gzip_size(&site.join("pkg/lantern.wasm")).map(|n| n as f64 / 1000.0);
    Figure {
        note: String::new(),
        server_cpu: 0.0,
        value: value.map_err(|e| e.to_string()),
    }
}

fn gzip_size(path: &Path) -> Result<usize> {
    let wasm = std::fs::read(path)?;
    let mut gzip = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = gzip.stdin.take().ok_or("no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(&wasm));
    let output = gzip.wait_with_output()?;
    writer.join().map_err(|_| "gzip writer panicked")??;
    Ok(output.stdout.len())
}
