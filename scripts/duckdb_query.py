"""Runs one SQL query in DuckDB (Athena's stand-in here) and prints its rows,
one JSON object a line, every value as its text (NULL as null), so a test can
compare them with a server's `SELECT *`.

    .venv/e2e/bin/python scripts/duckdb_query.py QUERY.sql
"""
import json
import sys

import duckdb


def main(path):
    con = duckdb.connect()
    cur = con.execute(open(path, encoding="utf-8").read())
    names = [d[0] for d in cur.description]
    for row in cur.fetchall():
        print(json.dumps({n: (None if v is None else str(v)) for n, v in zip(names, row)},
                         sort_keys=True, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1])
