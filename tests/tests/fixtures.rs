//! Every binlog fixture in tests/fixtures/mysql_common (and tests/fixtures/:
//! a MySQL 9 VECTOR column made by its script, and a real MySQL 9.7 file
//! with VECTOR, text, JSON and ENUM columns) decodes to the output
//! kept in tests/expected/ (reviewed by hand), or fails with the error kept
//! there after the events before it. `BLESS=1` rewrites the expected files from the current output.

use binlog_cdc::decoder::event::View;
use binlog_cdc::decoder::reader::DecodeOptions;
use binlog_cdc_tests::{collect, fixture_files, fixtures_dir, workspace_root};

#[tokio::test]
async fn fixtures_decode_to_their_expected_output() {
    let mut names = fixture_files();
    assert!(names.len() >= 14, "found {} fixtures", names.len());
    // This repository's own: made where no real file was to be had (each
    // with the script that writes it and where its bytes come from).
    names.push(workspace_root().join("tests/fixtures/vector.000001"));
    // A real MySQL 9.7 file (tests/fixtures/README.md).
    names.push(workspace_root().join("tests/fixtures/mysql97.000002"));
    names.sort();
    let expected_dir = workspace_root().join("tests/expected");
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let opts = DecodeOptions {
            view: View::Both,
            ..Default::default()
        };
        let (events, err) =
            collect::from_files_until_error(std::slice::from_ref(&path), opts).await;
        let mut got: String = events.iter().map(|e| format!("{e}\n")).collect();
        if let Some(e) = err {
            let e = binlog_cdc::Error::from(e);
            got.push_str(&format!("error [{}]: {e}\n", e.name()));
        }
        let want_path = expected_dir.join(format!("{name}.jsonl"));
        if bless {
            std::fs::write(&want_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&want_path)
            .unwrap_or_else(|e| panic!("{}: {e}", want_path.display()));
        if want != got {
            failures.push(format!("{name}:\n--- expected\n{want}\n--- got\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// MySQL's GTIDs in real files: the set at a file's start (its
/// PREVIOUS_GTIDS), the trail a decode leaves (the last file's start, then
/// each transaction's GTID), and where a set goes on (`restartAt: gtid:…`).
#[tokio::test]
async fn mysql_gtids_give_the_executed_set_and_where_a_set_goes_on() {
    use binlog_cdc::decoder::gtid::{GtidSet, GtidTrail};
    use binlog_cdc::decoder::reader::{Decoder, Discard};
    use binlog_cdc::decoder::source::file::FileSource;
    use binlog_cdc::decoder::source::gtid_scan;

    async fn trail(files: &[&str]) -> GtidTrail {
        let paths: Vec<_> = files.iter().map(|f| fixtures_dir().join(f)).collect();
        let mut dec = Decoder::new(DecodeOptions::default());
        dec.run(&mut FileSource::new(&paths), &mut Discard)
            .await
            .unwrap();
        dec.gtid_trail().clone()
    }
    async fn goes_on(file: &str, set: &GtidSet) -> Option<String> {
        let mut src = FileSource::new([fixtures_dir().join(file)]);
        let at = gtid_scan::first_transaction_outside(&mut src, set).await;
        at.unwrap().map(|p| p.to_string())
    }
    let set = |s: &str| s.parse::<GtidSet>().unwrap();
    const ENUMS: &str = "mysql-enum-string-set.000001";
    const UUID: &str = "93e95066-a2f4-11ec-9b69-9657f0ae95e2";

    // A server's first file starts with an empty set; a later one with what
    // came before it (one transaction of another server here).
    let at_start = |f: &str| {
        let mut src = FileSource::new([fixtures_dir().join(f)]);
        async move { gtid_scan::file_start_set(&mut src).await.unwrap() }
    };
    assert_eq!(at_start(ENUMS).await, Some(GtidSet::default()));
    let compressed = "transaction_compression.000001";
    let before = set("357df524-4139-11ee-9979-b033ee13919e:1");
    assert_eq!(at_start(compressed).await, Some(before.clone()));
    assert_eq!(
        at_start("mariadb-bin.000001").await,
        None,
        "MariaDB has none"
    );

    // The file's five transactions (DDL too), on its (empty) start set.
    let t = trail(&[ENUMS]).await;
    assert_eq!(t.file_start, Some(GtidSet::default()));
    assert_eq!(t.executed(None), Some(set(&format!("{UUID}:1-5"))));
    // Reading on into another file: its PREVIOUS_GTIDS is the set there.
    let t = trail(&[ENUMS, compressed]).await;
    assert_eq!(t.executed(None), Some(before));
    assert!(trail(&["mariadb-bin.000001"]).await.is_empty());

    // Where a set goes on: at the first transaction it lacks.
    let gtid_1 = goes_on(ENUMS, &GtidSet::default()).await;
    assert_eq!(gtid_1.as_deref(), Some(format!("{ENUMS}:157").as_str()));
    // Transaction 3's GTID event (its row event is at 1077, see
    // tests/expected/mysql-enum-string-set.000001.jsonl).
    let gtid_3 = goes_on(ENUMS, &set(&format!("{UUID}:1-2"))).await;
    assert_eq!(gtid_3.as_deref(), Some(format!("{ENUMS}:791").as_str()));
    assert_eq!(
        goes_on(ENUMS, &set(&format!("{UUID}:1-2:4-5"))).await,
        gtid_3,
        "a hole"
    );
    assert_eq!(goes_on(ENUMS, &set(&format!("{UUID}:1-5"))).await, None);
}
