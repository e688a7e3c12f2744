#!/usr/bin/env bash
# A throwaway MariaDB with ROW binlogs for the demo and the benchmark.
#   scripts/local-mariadb.sh start DIR [extra mariadbd options...]   prints the port
#   scripts/local-mariadb.sh stop DIR
# Root connects over DIR/sock; user cdc/cdc over TCP on 127.0.0.1.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cmd=${1:?start or stop}; dir=${2:?data directory}; shift 2 || true

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/tmp"   # its own tmpdir: a shared /tmp once broke a bootstrap
  mariadb-install-db --no-defaults --user=root --auth-root-authentication-method=socket \
    --datadir="$dir/data" --tmpdir="$dir/tmp" >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # The settings the tests' servers have too (scripts/mariadbd.cnf), with a
  # larger buffer pool for the benchmark's tables.
  mariadbd --defaults-file="$(cd "$(dirname "$0")" && pwd)/mariadbd.cnf" --datadir="$dir/data" --socket="$dir/sock" --tmpdir="$dir/tmp" \
    --port="$port" --log-bin="$dir/data/binlog" --innodb-buffer-pool-size=256M \
    --log-error="$dir/err.log" --pid-file="$dir/pid" "$@" >/dev/null 2>&1 &
  for _ in $(seq 1 300); do
    if [ -S "$dir/sock" ] && mariadb --no-defaults --socket="$dir/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  mariadb --no-defaults --socket="$dir/sock" -uroot -e "
    CREATE USER 'cdc'@'%' IDENTIFIED BY 'cdc'; GRANT ALL PRIVILEGES ON *.* TO 'cdc'@'%';
    CREATE USER 'cdc'@'localhost' IDENTIFIED BY 'cdc'; GRANT ALL PRIVILEGES ON *.* TO 'cdc'@'localhost';
    DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES;
    RESET MASTER;" || { cat "$dir/err.log" >&2; exit 1; }
  echo "$port" > "$dir/port"
  echo "$port"
  ;;
stop)
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
