"""Runs each reader several times over the same binlog and prints medians.

usage: run.py PORT RUNS_RUST RUNS_PYTHON [OTHER_BINARY]
OTHER_BINARY (say, a build of an earlier commit) runs the parse and the
pipeline too, in the same invocation, for a side-by-side comparison.
Measures wall time and CPU time of each run (os.wait4), its peak RSS (GNU
time), and takes rows from each tool's own count. WORKLOAD (narrow or wide,
as scripts/bench.sh generated) says which table the column rules' rows use.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

port, runs_rust, runs_py = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
other = sys.argv[4] if len(sys.argv) > 4 else None
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "binlog-cdc")
url = f"mysql://cdc:cdc@127.0.0.1:{port}?prefer_socket=false"


def run(cmd, stdout):
    start = time.perf_counter()
    # Peak RSS from GNU time: wait4's ru_maxrss of a child Python forks is
    # never below the Python's own (Linux keeps the high-water mark across
    # exec), about 15 MiB here.
    rss_file = tempfile.NamedTemporaryFile(prefix="binlog-cdc-bench-rss.", delete=False).name
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd], stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode()
    out = p.stdout.read().decode() if stdout == subprocess.PIPE else ""
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {err}")
    with open(rss_file) as f:
        rss = int(f.read().split()[-1]) / 1024.0
    os.unlink(rss_file)
    return wall, usage.ru_utime + usage.ru_stime, rss, out, err


def measure(name, cmd, runs, rows_of, stdout):
    results = []
    for i in range(runs):
        wall, cpu, rss, out, err = run(cmd(i) if callable(cmd) else cmd, stdout)
        rows = rows_of(out, err)
        results.append((rows / wall, wall, cpu, rss, rows))
        print(f"  {name} run {i + 1}: {rows} rows in {wall:.3f} s ({rows / wall:,.0f} rows/s), cpu {cpu:.3f} s, peak RSS {rss:.1f} MiB", file=sys.stderr)
    med = lambda k: statistics.median(r[k] for r in results)
    return {"name": name, "rows": results[0][4], "rows_s": med(0), "wall": med(1), "cpu": med(2), "rss": max(r[3] for r in results), "runs": runs}


def rust_rows(out, err):
    return int(re.search(r"parse: (\d+) row events", err).group(1))


workload = os.environ.get("WORKLOAD", "narrow")
rows = []
devnull = open(os.devnull, "wb")
rows.append(measure("binlog-cdc parse --view both", [binary, "parse", "--url", url, "--from", "binlog.000001:4", "--view", "both"], runs_rust, rust_rows, devnull))
if other:
    rows.append(measure(f"{other} parse --view both", [other, "parse", "--url", url, "--from", "binlog.000001:4", "--view", "both"], runs_rust, rust_rows, devnull))
    rows[-1]["ratio"] = rows[-1]["wall"] / rows[0]["wall"]
# The reading ceiling: the same log's bytes, read over the same protocol by
# the server's own client and written to files unparsed.
raw_dir = tempfile.mkdtemp(prefix="binlog-cdc-bench-raw.")
rows.append(measure("mariadb-binlog --raw --read-from-remote-server (bytes only: the reading ceiling)",
                    ["mariadb-binlog", "--raw", "--read-from-remote-server", "--host=127.0.0.1", f"--port={port}",
                     "--user=cdc", "--password=cdc", "--to-last-log", f"--result-file={raw_dir}/", "binlog.000001"],
                    runs_rust, lambda out, err: rows[0]["rows"], devnull))
subprocess.run(["rm", "-rf", raw_dir])
ceiling = rows[-1]
rows.append(measure("binlog-cdc parse --view keys", [binary, "parse", "--url", url, "--from", "binlog.000001:4", "--view", "keys"], runs_rust, rust_rows, devnull))
if workload == "narrow":
    # Column rules (the narrow workload's table): two of the eight columns
    # hashed (HMAC-SHA-256), one masked.
    key_file = tempfile.NamedTemporaryFile("w", prefix="binlog-cdc-bench-key.", delete=False)
    key_file.write("bench-hash-key-0123456789abcdef")
    key_file.close()
    rules = ["--column-rule", "bench.orders.customer=hash", "--column-rule", "bench.orders.sku=hash",
             "--column-rule", "bench.orders.note=mask", "--hash-key-file", key_file.name]
    rows.append(measure("binlog-cdc parse --view both, 2 hashed + 1 masked of 8 columns", [binary, "parse", "--url", url, "--from", "binlog.000001:4", "--view", "both"] + rules, runs_rust, rust_rows, devnull))
    rows[-1]["ratio"] = rows[-1]["wall"] / rows[0]["wall"]
    # The same with every hashed value unique (the key and the timestamp): no
    # hash is computed twice.
    unique = ["--column-rule", "bench.orders.id=hash", "--column-rule", "bench.orders.created=hash",
              "--column-rule", "bench.orders.note=mask", "--hash-key-file", key_file.name]
    rows.append(measure("binlog-cdc parse --view both, 2 hashed (unique values) + 1 masked of 8 columns", [binary, "parse", "--url", url, "--from", "binlog.000001:4", "--view", "both"] + unique, runs_rust, rust_rows, devnull))
    rows[-1]["ratio"] = rows[-1]["wall"] / rows[0]["wall"]
    os.unlink(key_file.name)
# The whole pipeline in one process (binlog-cdc run): plan, parse the chunks two
# at a time, fan out per table, commit; outputs to a fresh directory per run.
import json
work = tempfile.mkdtemp(prefix="binlog-cdc-bench-run.")
def run_cmd(i, exe=binary):
    # Earlier runs' outputs are removed first: left, their gigabytes are
    # written back to disk during the next runs and slow them unevenly.
    out = os.path.join(work, str(i))
    subprocess.run(["sh", "-c", f"rm -rf {work}/*"])
    return [exe, "run", "--url", url, "--out", out, "--view", "both",
            "--chunk-bytes", str(8 << 20), "--concurrency", "2"]
def run_rows_into(steps):
    def rows_of(out, err):
        report = json.loads(out)
        run_rows.chunks = report["chunks"]
        steps.append(report["stepSeconds"])
        return sum(report["counts"].values())
    return rows_of
steps, other_steps = [], []
run_rows = run_rows_into(steps)
rows.append(measure("binlog-cdc run --view both (local dir)", run_cmd, runs_rust, run_rows, subprocess.PIPE))
rows[-1]["name"] += f", {run_rows.chunks} chunks"
rows[-1]["ratio"] = rows[-1]["wall"] / rows[0]["wall"]
if other:
    rows.append(measure(f"{other} run --view both (local dir)", lambda i: run_cmd(i, other), runs_rust, run_rows_into(other_steps), subprocess.PIPE))
subprocess.run(["rm", "-rf", work])

if runs_py > 0:
    py = os.path.join(root, ".venv", "bench", "bin", "python")
    rows.append(measure("python-mysql-replication 1.0.17 (json.dumps, both images)", [py, os.path.join(root, "bench", "pyreplication_reader.py"), "127.0.0.1", port, "cdc", "cdc", "binlog.000001", "4"], runs_py, lambda out, err: int(out.strip()), subprocess.PIPE))

print()
print("| reader | row events | runs | median rows/s | median wall s | median CPU s | peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['name']} | {r['rows']:,} | {r['runs']} | {r['rows_s']:,.0f} | {r['wall']:.3f} | {r['cpu']:.3f} | {r['rss']:.1f} |")

print(f"\n{rows[0]['name']}: {ceiling['wall'] / rows[0]['wall']:.0%} of the reading ceiling's speed ({ceiling['wall']:.3f} s against {rows[0]['wall']:.3f} s, medians)")
for r in rows:
    if "ratio" in r:
        print(f"\n{r['name']}: {r['ratio']:.2f}x the wall time of {rows[0]['name']} (medians)")

for name, st in (("binlog-cdc run", steps), (other, other_steps)):
    if st:
        print()
        # Builds before the sharded fan-out name that step fanOutByTable.
        keys = [k for k in ("listBinlogs", "parseChunks", "fanOut", "fanOutByTable", "commitCheckpoint") if k in st[0]]
        print(f"{name}, median seconds per step: " + ", ".join(
            f"{k} {statistics.median(s[k] for s in st):.3f}" for k in keys))
