#!/usr/bin/env bash
# Installs what the tests and the demo need, if missing:
# - MariaDB server, client and mariadb-binlog (Debian's mariadb-server);
# - Node.js and npm (Debian's), and tests/e2e's npm packages
#   (aws-local-stepfunctions, asl-validator), pinned by package-lock.json;
# - a Python venv .venv/e2e with moto server (S3, Secrets Manager, EventBridge, SQS)
#   and cargo-lambda (which brings zig), pinned versions;
# and, for the tests only (not with `demo`):
# - openssl (tests/tls makes its certificates with it), GNU time (the
#   benchmarks' peak memory);
# - duckdb in .venv/e2e (Athena's stand-in for the README's queries and
#   the Parquet checks);
# - sysbench (Debian's: the current-rows test's writes, tests/tests/parquet.rs);
# - a Python venv .venv/infra with cfn-lint and the AWS SAM CLI, pinned, and
#   Rust's aarch64-unknown-linux-gnu target, for the offline infra checks;
# - rustfmt and clippy.
#   scripts/ensure-deps.sh [demo]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
only=${1:-all}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v mariadbd >/dev/null || ! command -v mariadb-binlog >/dev/null || ! command -v mariadb-install-db >/dev/null; then
  echo "installing mariadb-server..." >&2
  apt_install mariadb-server mariadb-client
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm..." >&2
  apt_install nodejs npm
fi
if [ ! -d tests/e2e/node_modules/aws-local-stepfunctions ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -x .venv/e2e/bin/moto_server ] || [ ! -x .venv/e2e/bin/cargo-lambda ]; then
  echo "installing moto server and cargo-lambda into .venv/e2e..." >&2
  python3 -m venv .venv/e2e
  .venv/e2e/bin/pip install -q --disable-pip-version-check \
    'moto[server,s3,secretsmanager,stepfunctions]==5.2.5' 'flask<4' 'flask-cors<7' 'cargo-lambda==1.9.2'
fi
# The rest only the tests use.
if [ "$only" = demo ]; then exit 0; fi
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (the benchmarks' peak memory)..." >&2
  apt_install time
fi
if ! command -v openssl >/dev/null; then
  echo "installing openssl (tests/tls makes its certificates with it)..." >&2
  apt_install openssl
fi
if ! command -v sysbench >/dev/null; then
  echo "installing sysbench (the current-rows test's writes)..." >&2
  apt_install sysbench
fi
# DuckDB stands in for Athena to run the README's example queries (tests/tests/athena.rs)
# and reads the Parquet objects (tests/tests/parquet.rs).
if ! .venv/e2e/bin/python -c 'import duckdb' 2>/dev/null; then
  echo "installing duckdb into .venv/e2e..." >&2
  .venv/e2e/bin/pip install -q --disable-pip-version-check 'duckdb==2.0.1'
fi
if [ ! -x .venv/infra/bin/cfn-lint ] || [ ! -x .venv/infra/bin/sam ]; then
  echo "installing cfn-lint and the SAM CLI into .venv/infra..." >&2
  python3 -m venv .venv/infra
  .venv/infra/bin/pip install -q --disable-pip-version-check 'cfn-lint==1.58.0' 'aws-sam-cli==1.170.0'
fi
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  echo "adding Rust's aarch64-unknown-linux-gnu target (sam build for arm64)..." >&2
  rustup target add aarch64-unknown-linux-gnu >/dev/null
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then rustup component add "$c" >/dev/null 2>&1 || true; fi
done
