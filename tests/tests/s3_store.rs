//! The S3 store's multipart writer against a real S3 API (moto server):
//! appended staged parts are joined byte for byte, large ones copied by S3
//! itself (UploadPartCopy) with the pieces before them topped up to S3's
//! 5 MiB minimum (moto refuses a smaller piece but the last, like S3), small
//! ones read once; a part of the wrong size or a missing part is a definite
//! error that names it. Streamed objects carry the events tag (the output
//! lifecycle rule's filter); the checkpoint does not.

use binlog_cdc::store::s3::{S3Store, EVENTS_TAG, MIN_PART};
use binlog_cdc::store::{ObjectStore, PutCondition, Source};
use binlog_cdc_tests::aws_local::LocalAws;

const BUCKET: &str = "s3-store-test";

/// Deterministic bytes, different for each `seed`.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i / 7 + seed as usize) % 26) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_parts_with_server_side_copies() {
    let logs = std::env::temp_dir().join(format!("binlog-cdc-s3-store-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let aws = LocalAws::start(&logs, BUCKET).await;
    let store = S3Store::new(aws.s3.clone(), BUCKET);
    let small = bytes(100, 1);
    let mid = bytes(6 << 20, 2);
    let big = bytes(12 << 20, 3);
    let tail = bytes(3 << 20, 4);
    for (k, body) in [
        ("p/small", &small),
        ("p/mid", &mid),
        ("p/big", &big),
        ("p/tail", &tail),
    ] {
        store
            .put(k, body.clone(), PutCondition::None)
            .await
            .unwrap();
    }
    let src = |k: &str, body: &Vec<u8>| Source::new(k, body.len() as u64);

    // Reads (mid after a short buffer), a copy after a full buffer, a copy
    // after a topped-up buffer, a small last piece.
    let mut w = store.writer("out/joined").await.unwrap();
    w.write(b"HEAD").await.unwrap();
    w.append_object(&mut src("p/mid", &mid), 1).await.unwrap();
    w.append_object(&mut src("p/big", &big), 0).await.unwrap();
    w.append_object(&mut src("p/small", &small), 0)
        .await
        .unwrap();
    w.append_object(&mut src("p/big", &big), 0).await.unwrap();
    w.append_object(&mut src("p/tail", &tail), 0).await.unwrap();
    w.write(b"TAIL").await.unwrap();
    w.finish().await.unwrap();
    let want = [&b"HEAD"[..], &mid[1..], &big, &small, &big, &tail, b"TAIL"].concat();
    let got = store.get("out/joined").await.unwrap().unwrap().body;
    assert!(
        got == want,
        "joined object differs ({} bytes, want {})",
        got.len(),
        want.len()
    );
    let copied_first = (big.len() + big.len() - (MIN_PART - small.len())) as u64;
    assert_eq!(
        store.bytes_copied(),
        copied_first,
        "the big part was not copied by S3 both times"
    );

    // A copy as the first and only piece, skipping a leading comma.
    let mut w = store.writer("out/one").await.unwrap();
    w.append_object(&mut src("p/big", &big), 1).await.unwrap();
    w.finish().await.unwrap();
    assert!(store.get("out/one").await.unwrap().unwrap().body == big[1..]);
    assert_eq!(store.bytes_copied(), copied_first + big.len() as u64 - 1);

    // One Source appended to two writers is read once and lands in both.
    let mut s = src("p/small", &small);
    let (mut a, mut b) = (
        store.writer("out/a").await.unwrap(),
        store.writer("out/b").await.unwrap(),
    );
    a.append_object(&mut s, 0).await.unwrap();
    b.append_object(&mut s, 1).await.unwrap();
    a.finish().await.unwrap();
    b.finish().await.unwrap();
    assert_eq!(store.get("out/a").await.unwrap().unwrap().body, small);
    assert_eq!(store.get("out/b").await.unwrap().unwrap().body, small[1..]);

    // Wrong sizes and a missing part: definite errors naming the part.
    for (key, size, want) in [
        ("p/small", 101u64, "holds 100 bytes, its chunk wrote 101"),
        ("p/big", (12 << 20) - 1, "its chunk wrote 12582911"),
        ("p/gone", 10, "missing"),
        ("p/gone", 20 << 20, "missing"),
    ] {
        let mut w = store.writer("out/bad").await.unwrap();
        w.write(&bytes(MIN_PART, 5)).await.unwrap();
        let err = w
            .append_object(&mut Source::new(key, size), 0)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(key) && msg.contains(want),
            "{key} {size}: {msg}"
        );
        assert!(!err.is_retryable(), "{key} {size}: {msg}");
    }
    assert!(store.get("out/bad").await.unwrap().is_none());

    // Streamed objects (multipart and small) carry the events tag that the
    // stack's output lifecycle rule expires; a put (meta.json) carries none.
    store
        .put("meta.json", b"{}".to_vec(), PutCondition::None)
        .await
        .unwrap();
    let tags = |key: &'static str| {
        let s3 = aws.s3.clone();
        async move {
            let out = s3
                .get_object_tagging()
                .bucket(BUCKET)
                .key(key)
                .send()
                .await
                .expect("tagging");
            out.tag_set()
                .iter()
                .map(|t| format!("{}={}", t.key(), t.value()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(tags("out/joined").await, [EVENTS_TAG], "multipart upload");
    assert_eq!(tags("out/a").await, [EVENTS_TAG], "small object");
    assert!(
        tags("meta.json").await.is_empty(),
        "the checkpoint is never tagged"
    );

    // Promotion (commit publishing a staged object): a server-side copy,
    // whole and tagged; a missing source is `false` and changes nothing.
    let staged = store.get("out/joined").await.unwrap().unwrap().body;
    assert!(store.promote("out/joined", "live/joined").await.unwrap());
    assert!(store.get("live/joined").await.unwrap().unwrap().body == staged);
    assert_eq!(
        tags("live/joined").await,
        [EVENTS_TAG],
        "a published object"
    );
    assert!(store.exists("live/joined").await.unwrap());
    assert!(!store.promote("out/none", "live/none").await.unwrap());
    assert!(!store.exists("live/none").await.unwrap());
    let _ = std::fs::remove_dir_all(&logs);
}
