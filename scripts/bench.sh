#!/usr/bin/env bash
# The benchmark: about 1,000,000 row events (90% multi-row inserts, 5% updates,
# 5% deletes; 8 mixed columns) in a throwaway MariaDB, read over the
# replication protocol by `binlog-cdc parse --view both`, by the whole pipeline
# in one process (`binlog-cdc run`, 8 MiB chunks, two at a time, outputs to a
# local directory) and by python-mysql-replication, in the same run. Prints a
# markdown table of medians.
#   [OTHER_BINARY=path] scripts/bench.sh [ROWS] [RUST_RUNS] [PYTHON_RUNS]
# OTHER_BINARY: another build (an earlier commit) whose pipeline runs too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}; RUST_RUNS=${2:-5}; PY_RUNS=${3:-3}
bash scripts/ensure-deps.sh
cargo build --release --locked --bin binlog-cdc
if [ "$PY_RUNS" -gt 0 ] && [ ! -x .venv/bench/bin/python ]; then
  python3 -m venv .venv/bench
  .venv/bench/bin/pip install -q mysql-replication==1.0.17
fi
dir=$(mktemp -d /tmp/binlog-cdc-bench.XXXXXX)
trap 'bash scripts/local-mariadb.sh stop "$dir"; rm -rf "$dir"' EXIT
# 16 MiB files: the log is several files, and binlog-cdc run cuts it into chunks.
port=$(bash scripts/local-mariadb.sh start "$dir" --max-binlog-size=16M)
sql() { mariadb --no-defaults --socket="$dir/sock" -uroot -e "$1"; }
inserts=$((ROWS * 90 / 100)); changes=$((ROWS * 5 / 100)); batch=10000
echo "generating $ROWS row events..." >&2
sql "CREATE DATABASE bench; CREATE TABLE bench.orders (
  id BIGINT UNSIGNED PRIMARY KEY, customer INT NOT NULL, sku VARCHAR(32) NOT NULL, qty SMALLINT NOT NULL,
  price DECIMAL(12,2) NOT NULL, weight DOUBLE, created DATETIME(3) NOT NULL, note VARCHAR(64))"
for ((start = 1; start <= inserts; start += batch)); do
  end=$((start + batch - 1)); [ $end -gt $inserts ] && end=$inserts
  sql "INSERT INTO bench.orders SELECT seq, seq % 9973, CONCAT('SKU-', seq % 1000), seq % 50,
       (seq % 100000) / 100, seq / 7.0, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND,
       IF(seq % 3 = 0, NULL, CONCAT('note ', seq, ' é')) FROM bench.seq_${start}_to_${end}"
done
for ((start = 1; start <= changes; start += batch)); do
  end=$((start + batch - 1)); [ $end -gt $changes ] && end=$changes
  sql "UPDATE bench.orders SET qty = qty + 1, note = 'updated' WHERE id BETWEEN $start AND $end"
  sql "DELETE FROM bench.orders WHERE id BETWEEN $((start + inserts / 2)) AND $((end + inserts / 2))"
done
sql "SHOW BINARY LOGS" >&2
python3 bench/run.py "$port" "$RUST_RUNS" "$PY_RUNS" ${OTHER_BINARY:+"$OTHER_BINARY"}
