"""Checks a `parquet` output directory value by value: every table's Parquet
rows, read by DuckDB (a reader nobody here wrote), against the same events
in the all-tables objects (JSON Lines, gzip), whose values the type matrix
checks against the servers. Each typed value must be exactly the JSON one.

    .venv/e2e/bin/python scripts/parquet_check.py OUT_DIR

Prints one JSON object: rows and values compared, per table. Exits 1 with
the first difference (table, position, column, both values).
"""
import base64
import datetime
import decimal
import glob
import gzip
import json
import struct
import sys

import duckdb

EVENT_FIELDS = ("_cdc_type", "_cdc_file", "_cdc_pos", "_cdc_index", "_cdc_keys", "_cdc_gtid",
                "_cdc_timestamp", "_cdc_columns_changed", "_cdc_partial", "_cdc_kind",
                "_cdc_snapshot_needed", "_cdc_new_schema", "_cdc_new_table", "_cdc_event",
                "_cdc_as_json", "_cdc_old")


def f32(x):
    return struct.pack("<f", x)


def micros_of_time(s):
    neg = s.startswith("-")
    hms, _, frac = s.lstrip("-").partition(".")
    h, m, sec = (int(p) for p in hms.split(":"))
    us = ((h * 60 + m) * 60 + sec) * 1_000_000 + (int(frac.ljust(6, "0")) if frac else 0)
    return -us if neg else us


def parse_datetime(s):
    return datetime.datetime.fromisoformat(s.rstrip("Z").replace("T", " ").ljust(19))


def same(ty, typed, js, as_json, name):
    """Whether the typed value `typed` (DuckDB type `ty`) is the JSON value `js`."""
    if js is None:
        return typed is None
    if name in as_json:
        if as_json[name] != js:
            return False
        if ty == "BLOB":  # a geometry with an SRID: the WKB is the rest
            return typed == base64.b64decode(js)[4:]
        return typed is None  # a zero date
    if typed is None:
        return False
    if ty.startswith("DECIMAL"):
        return (str(typed) == js) if isinstance(js, str) else (typed == decimal.Decimal(js))
    if ty == "FLOAT":
        return f32(typed) == f32(float(js))
    if ty == "DOUBLE":
        return typed == float(js)
    if ty == "FLOAT[]":
        return [f32(x) for x in typed] == [f32(float(x)) for x in js]
    if ty in ("TINYINT", "SMALLINT", "INTEGER"):
        return typed == js
    if ty == "BIGINT":  # an integer, BIT(<64), or TIME's microseconds
        return typed == (micros_of_time(js) if isinstance(js, str) else js)
    if ty == "DATE":
        return typed.isoformat() == js
    if ty == "TIMESTAMP":
        return typed == parse_datetime(js)
    if ty == "TIMESTAMP WITH TIME ZONE":
        return typed.astimezone(datetime.timezone.utc).replace(tzinfo=None) == parse_datetime(js)
    if ty == "BLOB":
        raw = base64.b64decode(js)
        return typed == raw or typed == raw[4:]  # bytes, or a geometry's WKB (SRID 0)
    if ty == "JSON":
        return json.loads(typed) == js
    return typed == js  # VARCHAR, VARCHAR[]


def events_by_table(out_dir):
    tables = {}
    for path in sorted(glob.glob(f"{out_dir}/all/dt=*/*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                tables.setdefault(f'{e["schema"]}/{e["table"]}', {})[
                    (e["position"], e["index"], e["type"])] = e
    return tables


def check_table(con, out_dir, name, events):
    files = f"{out_dir}/{name}/dt=*/*.parquet"
    cols = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{files}', union_by_name = true, hive_partitioning = false)").fetchall()
    types = {c[0]: c[1] for c in cols}
    table_cols = [c for c in types if c not in EVENT_FIELDS]
    rows = con.execute(f"SELECT * FROM read_parquet('{files}', union_by_name = true, hive_partitioning = false, filename = true)").fetchall()
    names = [c[0] for c in cols] + ["filename"]
    # Each object's own top-level columns: a statement's row holds the
    # columns it added only where its object has them.
    has = {}
    for f, c in con.execute(f"SELECT file_name, name FROM parquet_schema('{files}')").fetchall():
        has.setdefault(f, set()).add(c)
    if len(rows) != len(events):
        fail(name, "-", "row count", len(events), len(rows))
    values = 0
    for r in rows:
        row = dict(zip(names, r))
        at = f'{row["_cdc_file"]}:{row["_cdc_pos"]}'
        e = events.get((at, row["_cdc_index"], row["_cdc_type"]))
        if e is None:
            fail(name, at, "the event", None, row["_cdc_type"])
        expect = {
            "_cdc_keys": list(e["keys"]) if "keys" in e else None,
            "_cdc_gtid": e.get("gtid"),
            "_cdc_timestamp": e["timestamp"],
            "_cdc_columns_changed": e.get("columnsChanged"),
            "_cdc_partial": e.get("partial", False),
            "_cdc_kind": e.get("kind"),
            "_cdc_snapshot_needed": e.get("snapshotNeeded"),
        }
        got_ts = row["_cdc_timestamp"]
        row["_cdc_timestamp"] = int(got_ts.timestamp())
        for k, v in expect.items():
            if row[k] != v:
                fail(name, at, k, v, row[k])
        if e["type"] == "SchemaChangeEvent" and json.loads(row["_cdc_event"]) != e:
            fail(name, at, "_cdc_event", e, row["_cdc_event"])
        after = e.get("newImage", e.get("keys"))
        if after is None:
            added = e.get("columnsAdded") or {}
            after = {c: v for c, v in added.items() if c in has[row["filename"]]}
        old = row["_cdc_old"]
        before = e.get("oldImage")
        if before is None and e["type"] in ("UpdateRowsEvent", "DeleteRowsEvent"):
            before = dict(e["keys"])
            changed = json.loads(e["delta"]["before"]) if "delta" in e else {}
            before.update({k: v for k, v in changed.items() if k in before})
        # `_cdc_old` holds the same columns, stored alike.
        for image, got_row in ((after, row), (before, old)):
            if image is None:
                if got_row is not None:
                    fail(name, at, "_cdc_old", None, got_row)
                continue
            as_json = json.loads(got_row["_cdc_as_json"] or "{}")
            for c in table_cols:
                if not same(types[c], got_row[c], image.get(c), as_json, c):
                    fail(name, at, c, image.get(c), got_row[c])
                values += 1
    return {"rows": len(rows), "values": values}


def fail(table, at, what, want, got):
    print(json.dumps({"table": table, "at": at, "column": what,
                      "json": repr(want), "parquet": repr(got)}))
    sys.exit(1)


def main(out_dir):
    con = duckdb.connect()
    report = {}
    for name, events in sorted(events_by_table(out_dir).items()):
        report[name] = check_table(con, out_dir, name, events)
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
