//! Every binlog fixture in ../shared/fixtures/binlogs (and tests/fixtures/:
//! a MySQL 9 VECTOR column, made by its script) decodes to the output
//! kept in tests/expected/ (reviewed by hand), or fails with the error kept
//! there after the events before it. `BLESS=1` rewrites the expected files from the current output.

use binlog_cdc::event::View;
use binlog_cdc::reader::DecodeOptions;
use binlog_cdc_tests::{collect, fixtures_dir, workspace_root};

#[tokio::test]
async fn fixtures_decode_to_their_expected_output() {
    let dir = fixtures_dir();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert!(names.len() >= 14, "found {} fixtures", names.len());
    // This repository's own: made where no real file was to be had (each
    // with the script that writes it and where its bytes come from).
    names.push(workspace_root().join("tests/fixtures/vector.000001"));
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
