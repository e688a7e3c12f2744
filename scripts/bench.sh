#!/usr/bin/env bash
# The benchmark: about 1,000,000 row events in a throwaway MariaDB, read over
# the replication protocol by `binlog-cdc parse --view both`, by the whole
# pipeline in one process (`binlog-cdc run`, 8 MiB chunks, two at a time,
# outputs to a local directory), by python-mysql-replication, and by
# `mariadb-binlog --raw` (the log's bytes only: the reading ceiling), in the
# same run. Prints a markdown table of medians.
#   [WORKLOAD=narrow|wide] [OTHER_BINARY=path] scripts/bench.sh [ROWS] [RUST_RUNS] [PYTHON_RUNS]
# WORKLOAD narrow (the default): 90% multi-row inserts, 5% updates, 5%
#   deletes; 8 mixed columns (bench.orders, about 57 bytes of log a row).
# WORKLOAD wide: 80% inserts, 10% updates, 10% deletes; 8 columns with TEXT,
#   DATETIME(6), DECIMAL(12,4), ENUM, DOUBLE and utf8mb4 VARCHARs
#   (bench.wide, about 133 bytes of log a row).
# OTHER_BINARY: another build (an earlier commit) whose parse and pipeline run too.
# SUITE=formats: instead, `run --format` jsonl, jsonl.gz and parquet side by
#   side (bench/formats.py: medians, the objects' bytes, DuckDB over them).
# Needs GNU time (/usr/bin/time: Debian's time) for peak memory.
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
# A workload: its table and columns, an inserted row (over seq), what an
# update sets, and the shares of inserts and of updates (deletes as many).
case "${WORKLOAD:=narrow}" in
narrow)
  table=bench.orders; insert_pct=90; change_pct=5
  columns="id BIGINT UNSIGNED PRIMARY KEY, customer INT NOT NULL, sku VARCHAR(32) NOT NULL, qty SMALLINT NOT NULL,
    price DECIMAL(12,2) NOT NULL, weight DOUBLE, created DATETIME(3) NOT NULL, note VARCHAR(64)"
  row="seq, seq % 9973, CONCAT('SKU-', seq % 1000), seq % 50,
    (seq % 100000) / 100, seq / 7.0, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND,
    IF(seq % 3 = 0, NULL, CONCAT('note ', seq, ' é'))"
  update="qty = qty + 1, note = 'updated'" ;;
wide)
  table=bench.wide; insert_pct=80; change_pct=10
  columns="id BIGINT UNSIGNED PRIMARY KEY, title VARCHAR(120) CHARACTER SET utf8mb4 NOT NULL, body TEXT CHARACTER SET utf8mb4,
    at DATETIME(6) NOT NULL, amount DECIMAL(12,4) NOT NULL, state ENUM('new','paid','shipped','cancelled') NOT NULL,
    score DOUBLE, tags VARCHAR(64) CHARACTER SET utf8mb4"
  row="seq, CONCAT('Título ', seq, ' — ', REPEAT('ü', seq % 7)),
    IF(seq % 5 = 0, NULL, REPEAT(CONCAT('lorem ipsum dolor ', seq, ' '), 1 + seq % 4)),
    TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq * 1234567 MICROSECOND, (seq % 10000000) / 10000,
    ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'cancelled'), seq * 1.37, CONCAT('tag', seq % 100, ',€')"
  update="state = 'paid', amount = amount + 1" ;;
*) echo "WORKLOAD is narrow or wide, not $WORKLOAD" >&2; exit 2 ;;
esac
inserts=$((ROWS * insert_pct / 100)); changes=$((ROWS * change_pct / 100)); batch=10000
echo "generating $ROWS row events ($WORKLOAD)..." >&2
sql "CREATE DATABASE bench; CREATE TABLE $table ($columns)"
for ((start = 1; start <= inserts; start += batch)); do
  end=$((start + batch - 1)); [ $end -gt $inserts ] && end=$inserts
  sql "INSERT INTO $table SELECT $row FROM bench.seq_${start}_to_${end}"
done
for ((start = 1; start <= changes; start += batch)); do
  end=$((start + batch - 1)); [ $end -gt $changes ] && end=$changes
  sql "UPDATE $table SET $update WHERE id BETWEEN $start AND $end"
  sql "DELETE FROM $table WHERE id BETWEEN $((start + inserts / 2)) AND $((end + inserts / 2))"
done
sql "SHOW BINARY LOGS" >&2
if [ "${SUITE:-readers}" = formats ]; then
  WORKLOAD=$WORKLOAD python3 bench/formats.py "$port" "$RUST_RUNS"
  exit 0
fi
WORKLOAD=$WORKLOAD python3 bench/run.py "$port" "$RUST_RUNS" "$PY_RUNS" ${OTHER_BINARY:+"$OTHER_BINARY"}
