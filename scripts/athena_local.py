"""The README's Athena queries, run on a local output directory with DuckDB
standing in for Athena (no AWS account here): the `change_events` table is
a view over the all-tables objects under `all/dt=*/`, with the columns the
stack's Glue table declares, and `json_extract_scalar` as Athena names it.

    .venv/e2e/bin/python scripts/athena_local.py OUT_DIR README.md

Prints one JSON array per query (its rows as objects), in README order.
"""
import json
import sys

import duckdb


def queries(readme):
    text = open(readme, encoding="utf-8").read()
    block = text.split("```sql\n", 1)[1].split("```", 1)[0]
    return [q.strip() for q in block.split(";") if q.strip()]


def main(out_dir, readme):
    con = duckdb.connect()
    con.execute("CREATE SCHEMA binlog_cdc")
    con.execute("CREATE MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)")
    files = f"{out_dir}/all/dt=*/*.jsonl*"
    # The Glue table's columns; images and keys as JSON text.
    con.execute(f"""
        CREATE VIEW binlog_cdc.change_events AS
        SELECT "schema", "table", type, position, "index", "timestamp", gtid,
               CAST(keys AS VARCHAR) AS keys, CAST(newImage AS VARCHAR) AS newimage,
               CAST(oldImage AS VARCHAR) AS oldimage, delta, columnsChanged AS columnschanged,
               partial, kind, statement, newSchema AS newschema, newTable AS newtable,
               snapshotNeeded AS snapshotneeded, CAST(definition AS VARCHAR) AS definition, dt
        FROM read_json('{files}', format = 'newline_delimited', hive_partitioning = true,
             union_by_name = true, columns = {{
               'schema': 'VARCHAR', 'table': 'VARCHAR', 'type': 'VARCHAR', 'position': 'VARCHAR',
               'index': 'INTEGER', 'timestamp': 'BIGINT', 'gtid': 'VARCHAR', 'keys': 'JSON',
               'newImage': 'JSON', 'oldImage': 'JSON',
               'delta': 'STRUCT(after VARCHAR, before VARCHAR)',
               'columnsChanged': 'VARCHAR[]', 'partial': 'BOOLEAN', 'kind': 'VARCHAR',
               'statement': 'VARCHAR', 'newSchema': 'VARCHAR', 'newTable': 'VARCHAR',
               'snapshotNeeded': 'BOOLEAN', 'definition': 'JSON'}})
    """)
    for q in queries(readme):
        cur = con.execute(q)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
