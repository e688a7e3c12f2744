//! Mutation fuzzing of the binlog file decoder: every fixture in
//! tests/fixtures/mysql_common, mutated many ways (flipped bits, overwritten
//! bytes, huge length fields, truncations, duplicated and deleted spans),
//! must decode or fail with an error: never a panic, never a hang (each input
//! has 10 s), never an allocation past 64 MiB (a counting allocator watches).
//!
//! Inputs that fail are kept in target/fuzz-failures/.
//! `FUZZ_ITERATIONS` (per fixture, default 300) and `FUZZ_SEED` make longer
//! or different runs: `FUZZ_ITERATIONS=20000 cargo test --release -p
//! binlog-cdc-tests --test fuzz_decoder -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use binlog_cdc::decoder::event::View;
use binlog_cdc::decoder::reader::{DecodeOptions, Decoder, RowSink};
use binlog_cdc::decoder::schema::TableMeta;
use binlog_cdc::decoder::source::file::FileSource;
use binlog_cdc_tests::fixture_files;

/// The system allocator, remembering the largest single request.
struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MAX_ALLOCATION: usize = 64 << 20;

/// xorshift64*: deterministic, so a failure names a seed that reproduces it.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `data`; the first 4 bytes (the magic) are mostly kept so
/// that the decoder gets past the header and into the events.
fn mutate(data: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut d = data.to_vec();
    let body = 4.min(d.len());
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        if d.len() <= body {
            break;
        }
        let at = body + rng.below(d.len() - body);
        match rng.below(7) {
            0 => d[at] ^= 1 << rng.below(8),
            1 => d[at] = rng.next() as u8,
            2 => {
                // A huge little-endian u32 (event sizes, lengths, counts).
                let v = [0xFFFF_FFFFu32, 0x7FFF_FFFF, 0x8000_0000, 0x0100_0000][rng.below(4)];
                for (i, b) in v.to_le_bytes().iter().enumerate() {
                    if let Some(x) = d.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            3 => d.truncate(at),
            4 => {
                let len = 1 + rng.below(64.min(d.len() - at));
                let span = d[at..at + len].to_vec();
                let to = body + rng.below(d.len() - body);
                d.splice(to..to, span);
            }
            5 => {
                let len = 1 + rng.below(64.min(d.len() - at));
                d.drain(at..at + len);
            }
            _ => d[at] = [0x00, 0xFF, 0xFE, 0xFC, 0xFB][rng.below(5)],
        }
    }
    d
}

struct Count(u64);
impl RowSink for Count {
    fn row(&mut self, _: &TableMeta, _: u32, json: &[u8]) -> binlog_cdc::decoder::Result<()> {
        // Whatever is emitted must still be one JSON object.
        serde_json::from_slice::<serde_json::Value>(json).map_err(|e| {
            binlog_cdc::decoder::Error::Config(format!("decoder emitted invalid JSON: {e}"))
        })?;
        self.0 += 1;
        Ok(())
    }

    fn statement(
        &mut self,
        _: &str,
        _: &str,
        _: u32,
        json: &[u8],
    ) -> binlog_cdc::decoder::Result<()> {
        serde_json::from_slice::<serde_json::Value>(json).map_err(|e| {
            binlog_cdc::decoder::Error::Config(format!("decoder emitted invalid JSON: {e}"))
        })?;
        self.0 += 1;
        Ok(())
    }
}

/// Decodes one file: Ok(rows) or the decoder's error text.
async fn decode(path: std::path::PathBuf) -> Result<u64, String> {
    let mut src = FileSource::new([path]);
    let mut dec = Decoder::new(DecodeOptions {
        view: View::Both,
        ..Default::default()
    });
    let mut sink = Count(0);
    match dec.run(&mut src, &mut sink).await {
        Ok(_) => Ok(sink.0),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn mutated_fixtures_never_panic_hang_or_overallocate() {
    let iterations: u64 = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_B1A6);
    // Panics inside mysql_common's parsers are caught by the reader (which
    // turns each into an error naming the position, and prints nothing:
    // binlog_cdc::decoder::guard); one that escapes it fails its case below.
    let fixtures = fixture_files();
    assert!(fixtures.len() >= 14, "found {} fixtures", fixtures.len());
    let work = std::env::temp_dir().join(format!("binlog-cdc-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");

    let (mut runs, mut decoded, mut refused) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    'fixtures: for (fi, fixture) in fixtures.iter().enumerate() {
        let original = std::fs::read(fixture).expect("fixture");
        let name = fixture
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // The 150 KB fixture gets a tenth of the iterations.
        let n = if original.len() > 64 << 10 {
            (iterations / 10).max(1)
        } else {
            iterations
        };
        for i in 0..n {
            let case_seed = seed ^ ((fi as u64) << 32) ^ i;
            let mut rng = Rng(case_seed.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1);
            let data = mutate(&original, &mut rng);
            let path = work.join(format!("{name}.{i}"));
            std::fs::write(&path, &data).expect("write mutated file");
            let failed_before = failures.len();
            LARGEST.store(0, Ordering::Relaxed);
            // Each input on its own thread and runtime: a decoder stuck in a
            // loop cannot stop the clock that catches it (it is left behind).
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime")
                        .block_on(decode(p))
                });
                let _ = tx.send(outcome);
            });
            let outcome = rx.recv_timeout(Duration::from_secs(10));
            let largest = LARGEST.load(Ordering::Relaxed);
            runs += 1;
            let what = format!("{name} with FUZZ_SEED={seed} case {i} (case seed {case_seed:#x})");
            match outcome {
                Err(_) => failures.push(format!("{what}: no answer within 10 s")),
                Ok(Err(_)) => failures.push(format!("{what}: panicked")),
                Ok(Ok(Ok(_))) => decoded += 1,
                Ok(Ok(Err(msg))) => {
                    refused += 1;
                    if msg.trim().is_empty() {
                        failures.push(format!("{what}: an error without a message"));
                    }
                }
            }
            if largest > MAX_ALLOCATION {
                failures.push(format!("{what}: allocated {largest} bytes at once"));
            }
            if failures.len() > failed_before {
                // Kept for a look: target/fuzz-failures/<fixture>.<case>
                let keep = binlog_cdc_tests::workspace_root().join("target/fuzz-failures");
                let _ = std::fs::create_dir_all(&keep);
                let _ = std::fs::copy(&path, keep.join(format!("{name}.{i}")));
            }
            let _ = std::fs::remove_file(&path);
            if failures.len() >= 10 {
                break 'fixtures; // enough to act on; stuck threads would pile up
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "fuzz: {runs} mutated inputs from {} fixtures (seed {seed}): {decoded} decoded, {refused} refused with an error, {} failures",
        fixtures.len(),
        failures.len()
    );
    assert!(runs >= 14 * iterations / 10, "ran only {runs} cases");
    assert!(
        refused > 0,
        "no mutation was refused: the mutations do not reach the decoder"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
