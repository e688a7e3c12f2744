"""The output formats side by side: `binlog-cdc run --view both` with
`--format jsonl`, `jsonl.gz` and `parquet`, in alternating rounds over the
same binlog, medians; then the per-table objects' bytes in each format, and
the seconds DuckDB takes to count their events and to sum one column.

usage: formats.py PORT RUNS   (WORKLOAD narrow or wide names the table)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

port, runs = sys.argv[1], int(sys.argv[2])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "binlog-cdc")
duck = os.path.join(root, ".venv", "e2e", "bin", "python")
url = f"mysql://cdc:cdc@127.0.0.1:{port}?prefer_socket=false"
table, column = {"narrow": ("orders", "qty"), "wide": ("wide", "amount")}[os.environ.get("WORKLOAD", "narrow")]
formats = ["jsonl", "jsonl.gz", "parquet"]
work = tempfile.mkdtemp(prefix="binlog-cdc-bench-formats.")


def run(fmt):
    out = os.path.join(work, fmt)
    subprocess.run(["rm", "-rf", out])
    rss_file = os.path.join(work, "rss")
    start = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, binary, "run", "--url", url,
                          "--out", out, "--view", "both", "--format", fmt,
                          "--chunk-bytes", str(8 << 20), "--concurrency", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"run --format {fmt} failed: {p.stderr.read().decode()}")
    report = json.loads(p.stdout.read())
    with open(rss_file) as f:
        rss = int(f.read().split()[-1]) / 1024.0
    return wall, usage.ru_utime + usage.ru_stime, rss, sum(report["counts"].values())


results = {f: [] for f in formats}
for _ in range(runs):
    for fmt in formats:  # alternating, so drift hits each alike
        results[fmt].append(run(fmt))

print("| run --view both | row events | runs | median wall s | median CPU s | peak RSS MiB | wall vs jsonl |")
print("|---|---|---|---|---|---|---|")
base = statistics.median(r[0] for r in results["jsonl"])
for fmt in formats:
    rs = results[fmt]
    wall = statistics.median(r[0] for r in rs)
    print(f"| --format {fmt} | {rs[0][3]:,} | {runs} | {wall:.3f} | {statistics.median(r[1] for r in rs):.3f} | "
          f"{statistics.median(r[2] for r in rs):.1f} | {wall / base:.2f}x |")

# The last round's outputs: the table's objects, and DuckDB over them.
query = r'''
import duckdb, statistics, sys, time
files, fmt, column = sys.argv[1], sys.argv[2], sys.argv[3]
src = (f"read_parquet('{files}')" if fmt == "parquet"
       else f"read_ndjson('{files}', columns = {{'newImage': 'STRUCT({column} DOUBLE)'}})")
value = column if fmt == "parquet" else f'"newImage".{column}'
con = duckdb.connect()
out = []
for q in (f"SELECT count(*) FROM {src}", f"SELECT sum({value}) FROM {src}"):
    times = []
    for _ in range(5):
        t = time.perf_counter(); con.execute(q).fetchall(); times.append(time.perf_counter() - t)
    out.append(statistics.median(times))
print(*out)
'''
print()
print(f"| bench.{table} objects | bytes | DuckDB count(*) s | DuckDB sum({column}) s |")
print("|---|---|---|---|")
for fmt in formats:
    tdir = os.path.join(work, fmt, "bench", table)
    files = [os.path.join(d, f) for d, _, fs in os.walk(tdir) for f in fs]
    size = sum(os.path.getsize(f) for f in files)
    pattern = os.path.join(tdir, "dt=*", f"*.{fmt}")
    counts = subprocess.run([duck, "-c", query, pattern, fmt, column], capture_output=True, text=True, check=True)
    count_s, sum_s = (float(x) for x in counts.stdout.split())
    print(f"| {fmt} | {size:,} | {count_s:.3f} | {sum_s:.3f} |")
subprocess.run(["rm", "-rf", work])
