#!/usr/bin/env bash
# Every test: formatting, lints, the state machine definition, unit tests, and
# the integration and end-to-end tests (which start their own MariaDB, MySQL,
# moto server and cargo lambda watch on free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

bash scripts/ensure-deps.sh
# Oracle's MySQL for tests/tests/mysql.rs (Debian unstable's, in .mysql/).
bash scripts/ensure-mysql.sh

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
bash scripts/check-infra.sh
# The end-to-end test serves these binaries through cargo lambda watch.
cargo build --bins --locked
# The README's first command, on that build: it must keep working.
DEMO_PROFILE=dev bash scripts/demo.sh > target/demo.log 2>&1 || { tail -40 target/demo.log; echo "scripts/demo.sh failed: target/demo.log" >&2; exit 1; }
cargo test --workspace --locked
