"""The baseline: python-mysql-replication reading the same binlog range,
building the original article's event dicts (plus full images, like
--view both) and serialising each with json.dumps, to /dev/null.

usage: pyreplication_reader.py HOST PORT USER PASSWORD LOG_FILE LOG_POS
Prints the number of row events on stdout.
"""
import json
import sys

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

host, port, user, password, log_file, log_pos = sys.argv[1:7]
stream = BinLogStreamReader(
    connection_settings={"host": host, "port": int(port), "user": user, "passwd": password},
    server_id=4242,
    blocking=False,
    resume_stream=True,
    log_file=log_file,
    log_pos=int(log_pos),
    only_events=[DeleteRowsEvent, WriteRowsEvent, UpdateRowsEvent],
    # is_mariadb=True makes 1.0.17 send an empty file name, start over from the
    # first binlog on every reconnect and never end in non-blocking mode; the
    # MySQL-style dump request works against MariaDB.
    is_mariadb=False,
)
out = open("/dev/null", "w")
count = 0
for ev in stream:
    for row in ev.rows:
        event = {"schema": ev.schema, "table": ev.table, "type": type(ev).__name__}
        if isinstance(ev, UpdateRowsEvent):
            before, after = row["before_values"], row["after_values"]
            changed = [k for k in after if after[k] != before.get(k)]
            event["delta"] = {
                "after": json.dumps({k: after[k] for k in changed}, sort_keys=True, default=str, ensure_ascii=False),
                "before": json.dumps({k: before[k] for k in changed}, sort_keys=True, default=str, ensure_ascii=False),
            }
            event["columnsChanged"] = changed
            event["keys"] = {"id": after.get("id")}
            event["newImage"], event["oldImage"] = after, before
        else:
            values = row["values"]
            event["keys"] = {"id": values.get("id")}
            event["newImage" if isinstance(ev, WriteRowsEvent) else "oldImage"] = values
        out.write(json.dumps(event, sort_keys=True, default=str, ensure_ascii=False))
        out.write("\n")
        count += 1
stream.close()
print(count)
