//! Remote-write ingestion end to end, without HTTP: snappy-compressed Remote-Write 1.0
//! requests of 2,000 samples (Prometheus's default `max_samples_per_send`) are decompressed,
//! decoded and committed to a real TSDB.
//!
//! Run: `cargo bench --bench remote_write`.

use std::time::{Duration, Instant};

use augur_api::metadata::MetadataStore;
use augur_api::proto::v1;
use augur_api::remote_write::{decode_body, ingest, LabelCache, Version};
use augur_storage::{NameScheme, Options, Tsdb};
use augur_testdata::Generator;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use tempfile::TempDir;

#[global_allocator]
static ALLOC: augur_api::GlobalAllocator = mimalloc::MiMalloc;

const SAMPLES_PER_REQUEST: usize = 2000;

/// Encodes the next `n` scrapes as requests of 2,000 samples each, as Prometheus batches them.
fn requests(gen: &mut Generator, scrapes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..scrapes {
        gen.scrape_each(|l, t, v| {
            batch.push(v1::TimeSeries {
                labels: l
                    .iter()
                    .map(|p| v1::Label {
                        name: prost::bytes::Bytes::copy_from_slice(p.name.as_bytes()),
                        value: prost::bytes::Bytes::copy_from_slice(p.value.as_bytes()),
                    })
                    .collect(),
                samples: vec![v1::Sample {
                    value: v,
                    timestamp: t,
                }],
                ..Default::default()
            });
            if batch.len() == SAMPLES_PER_REQUEST {
                let req = v1::WriteRequest {
                    timeseries: std::mem::take(&mut batch),
                    metadata: vec![],
                };
                out.push(
                    snap::raw::Encoder::new()
                        .compress_vec(&req.encode_to_vec())
                        .unwrap(),
                );
            }
        });
    }
    out
}

fn remote_write(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    let meta = MetadataStore::default();
    let cache = LabelCache::default();
    let mut gen = Generator::new(10_000, 1_700_000_000_000, 5);
    let mut group = c.benchmark_group("remote_write");
    group.throughput(Throughput::Elements(SAMPLES_PER_REQUEST as u64));
    group.bench_function("v1_decode_and_commit_2000_samples", |b| {
        let mut pending: Vec<Vec<u8>> = Vec::new();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if pending.is_empty() {
                    pending = requests(&mut gen, 2);
                    pending.reverse();
                }
                let body = pending.pop().unwrap();
                let start = Instant::now();
                let req = decode_body(&body, Version::V1, 64 << 20).unwrap();
                let out = ingest(&db, &meta, &cache, NameScheme::Utf8, &req).unwrap();
                total += start.elapsed();
                assert_eq!(out.samples_written as usize, SAMPLES_PER_REQUEST);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, remote_write);
criterion_main!(benches);
