#!/usr/bin/env bash
# The snapshot benchmark: one table of ROWS rows (8 mixed columns, the same
# as scripts/bench.sh) in a throwaway MariaDB, written before `RESET MASTER`
# (the binlog never had them), then read RUNS times each, alternating, by
#   - mariadb-dump of the table to /dev/null (one thread, its defaults), over
#     the Unix socket and over TCP (the snapshot's transport: its URL says
#     prefer_socket=false, or mysql_async would move a connection to
#     127.0.0.1 onto the Unix socket), and over TCP to a file beside the
#     snapshot's output, and
#   - binlog-cdc run --snapshot: 4 ranges read in parallel, events staged,
#     joined into the per-table and all-tables objects, meta.json committed
#     (jsonl, a fresh local directory each time).
# Prints medians of wall time, rows/s and peak RSS (GNU time), the snapshot
# run's own step times, and the snapshot's time over the TCP dump's pair by
# pair (the two run in the same round; the machine's speed drifts between
# rounds far more than within one).
# OTHER_BINARY (a build of an earlier commit, say) runs the same snapshot in
# the same invocation, for a side-by-side comparison.
#   scripts/bench-snapshot.sh [ROWS] [RUNS] [OTHER_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}; RUNS=${2:-5}; OTHER=${3:-}
bash scripts/ensure-deps.sh
cargo build --release --locked --bin binlog-cdc
dir=$(mktemp -d /tmp/binlog-cdc-snapbench.XXXXXX)
trap 'bash scripts/local-mariadb.sh stop "$dir"; rm -rf "$dir"' EXIT
port=$(bash scripts/local-mariadb.sh start "$dir")
sql() { mariadb --no-defaults --socket="$dir/sock" -uroot -e "$1"; }
echo "loading $ROWS rows..." >&2
sql "CREATE DATABASE bench; CREATE TABLE bench.orders (
  id BIGINT UNSIGNED PRIMARY KEY, customer INT NOT NULL, sku VARCHAR(32) NOT NULL, qty SMALLINT NOT NULL,
  price DECIMAL(12,2) NOT NULL, weight DOUBLE, created DATETIME(3) NOT NULL, note VARCHAR(64))"
batch=100000
for ((start = 1; start <= ROWS; start += batch)); do
  end=$((start + batch - 1)); [ $end -gt "$ROWS" ] && end=$ROWS
  sql "INSERT INTO bench.orders SELECT seq, seq % 9973, CONCAT('SKU-', seq % 1000), seq % 50,
       (seq % 100000) / 100, seq / 7.0, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND,
       IF(seq % 3 = 0, NULL, CONCAT('note ', seq, ' é')) FROM bench.seq_${start}_to_${end}"
done
sql "RESET MASTER"
python3 - "$dir" "$port" "$ROWS" "$RUNS" "$OTHER" <<'PY'
import json, os, shutil, statistics, subprocess, sys
d, port, rows, runs, other = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
url = f"mysql://cdc:cdc@127.0.0.1:{port}?prefer_socket=false"
ranges = 4
def snapshot(exe):
    return [exe, "run", "--url", url, "--out", f"{d}/out", "--format", "jsonl",
            "--snapshot", "bench.orders", "--snapshot-range-rows", str(-(-rows // ranges)),
            "--snapshot-ranges-per-run", str(ranges), "--concurrency", str(ranges)]
cmds = {
    "mariadb-dump (1 thread, Unix socket)": ["mariadb-dump", "--no-defaults", f"--socket={d}/sock",
                                             "-uroot", "bench", "orders"],
    # The snapshot connects over TCP (see `url`), as it does to RDS: the same
    # transport.
    "mariadb-dump (1 thread, TCP)": ["mariadb-dump", "--no-defaults", "--protocol=TCP",
                                     "-h127.0.0.1", f"-P{port}", "-ucdc", "-pcdc", "bench", "orders"],
    # Its output written to a file where the snapshot writes its objects: what
    # writing the output through the page cache costs here.
    "mariadb-dump (1 thread, TCP, to a file)": ["mariadb-dump", "--no-defaults", "--protocol=TCP",
                                                "-h127.0.0.1", f"-P{port}", "-ucdc", "-pcdc",
                                                f"--result-file={d}/out/dump.sql", "bench", "orders"],
    f"binlog-cdc run --snapshot ({ranges} ranges)": snapshot("target/release/binlog-cdc"),
}
if other:
    cmds[f"{other} run --snapshot ({ranges} ranges)"] = snapshot(other)
results = {k: [] for k in cmds}
steps = {k: [] for k in cmds}
for _ in range(runs):
    for name, cmd in cmds.items():
        shutil.rmtree(f"{d}/out", ignore_errors=True)
        os.makedirs(f"{d}/out")
        # The last run's output goes to disk before the clock starts, not
        # while the next command runs (both share the 2 cores with it).
        subprocess.run(["sync"], check=True)
        ours = cmd[0] != "mariadb-dump"
        p = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd],
                           stdout=subprocess.PIPE if ours else subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit(f"{name} failed:\n{p.stderr}")
        if ours:
            steps[name].append(json.loads(p.stdout)["stepSeconds"])
        secs, kib = p.stderr.strip().splitlines()[-1].split()
        results[name].append((float(secs), int(kib)))
print(f"\n{rows:,} rows, {runs} runs each, alternating; medians\n")
print("| reader | seconds | rows/s | peak RSS (MiB) |")
print("|---|---:|---:|---:|")
for name, rs in results.items():
    s = statistics.median(r[0] for r in rs)
    m = statistics.median(r[1] for r in rs) / 1024
    print(f"| {name} | {s:.2f} | {rows / s:,.0f} | {m:.0f} |")
dump = results["mariadb-dump (1 thread, TCP)"]
for name, ss in steps.items():
    if ss:
        print(f"\n{name}, its steps (medians, seconds): " + ", ".join(
            f"{k} {statistics.median(s[k] for s in ss):.2f}" for k in ss[0]))
        ratios = sorted(a[0] / b[0] for a, b in zip(results[name], dump))
        print(f"\n{name} over the TCP dump, pair by pair: median {statistics.median(ratios):.2f}"
              f" ({ratios[0]:.2f}-{ratios[-1]:.2f}); faster in {sum(r < 1 for r in ratios)}"
              f" pairs of {len(ratios)}")
PY
