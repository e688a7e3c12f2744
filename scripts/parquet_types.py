"""Prints the columns of Parquet objects as DuckDB (a reader nobody here
wrote) reads them, in Hive's type names, so a test can compare them with a
Glue table's columns: one JSON object per file, {"file": ..., "columns":
[[name, type], ...]} in the file's order, `_cdc_old`'s members read
through `unnest`.

    .venv/e2e/bin/python scripts/parquet_types.py FILE...
"""
import json
import re
import sys

import duckdb

SIMPLE = {
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "VARCHAR": "string",
    "JSON": "string",
    "BLOB": "binary",
    "BOOLEAN": "boolean",
    "FLOAT": "float",
    "DOUBLE": "double",
}


def hive(duck):
    if duck.endswith("[]"):
        return f"array<{hive(duck[:-2])}>"
    m = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duck)
    if m:
        return f"decimal({m.group(1)},{m.group(2)})"
    if duck in SIMPLE:
        return SIMPLE[duck]
    raise SystemExit(f"no Hive type for DuckDB's {duck}")


def describe(con, query):
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {query}").fetchall()]


def columns(con, path):
    rel = f"read_parquet('{path}', hive_partitioning = false)"
    out = []
    for name, duck in describe(con, f"SELECT * FROM {rel}"):
        if name == "_cdc_old":
            members = describe(con, f"SELECT unnest(_cdc_old) FROM {rel}")
            ty = "struct<" + ",".join(f"{n.lower()}:{hive(t)}" for n, t in members) + ">"
        else:
            ty = hive(duck)
        out.append([name.lower(), ty])
    return out


def main(paths):
    con = duckdb.connect()
    for path in paths:
        print(json.dumps({"file": path, "columns": columns(con, path)}))


if __name__ == "__main__":
    main(sys.argv[1:])
