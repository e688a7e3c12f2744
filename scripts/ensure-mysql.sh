#!/usr/bin/env bash
# Installs Oracle's MySQL server for the tests that need MySQL itself
# (tests/tests/mysql.rs), if missing, into .mysql/ of this checkout:
#   .mysql/root       a Debian unstable root made by debootstrap, holding
#                     mysql-server-core and mysql-client-core;
#   .mysql/bin/mysqld and .mysql/bin/mysql, which run them.
# Debian ships Oracle's MySQL only in unstable (9.x at the time of writing),
# built against a newer C library than this machine's: the wrappers start it
# with that root's own dynamic loader and libraries. No chroot, no container;
# the server reads and writes the paths it is given, as MariaDB's does.
# Needs root (or sudo) for debootstrap; about a minute on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
root=$PWD/.mysql/root
mirror=${BINLOG_CDC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ ! -x "$root/usr/sbin/mysqld" ] || [ ! -x "$root/usr/bin/mysql" ]; then
  if ! command -v debootstrap >/dev/null; then
    echo "installing debootstrap..." >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  echo "installing MySQL (Debian unstable's mysql-server-core) into .mysql/root..." >&2
  rm -rf "$root"
  mkdir -p "$root"
  as_root debootstrap --variant=minbase --include=mysql-server-core,mysql-client-core \
    sid "$root" "$mirror" > .mysql/debootstrap.log 2>&1 \
    || { tail -20 .mysql/debootstrap.log >&2; exit 1; }
fi

mkdir -p .mysql/bin
loader="$root/usr/lib64/ld-linux-x86-64.so.2 --library-path $root/usr/lib/x86_64-linux-gnu"
# mysqld reads no option file (as --no-defaults) and finds its messages,
# character sets and plugins under the root; callers pass the rest.
cat > .mysql/bin/mysqld <<EOF
#!/bin/sh
# mysqld of .mysql/root, run by that root's loader (scripts/ensure-mysql.sh).
exec $loader "$root/usr/sbin/mysqld" --no-defaults --basedir="$root/usr" \\
  --lc-messages-dir="$root/usr/share/mysql" --character-sets-dir="$root/usr/share/mysql/charsets" \\
  --plugin-dir="$root/usr/lib/mysql/plugin" "\$@"
EOF
for bin in mysql mysqlbinlog; do
  cat > ".mysql/bin/$bin" <<EOF
#!/bin/sh
# $bin of .mysql/root, run by that root's loader (scripts/ensure-mysql.sh).
exec $loader "$root/usr/bin/$bin" --no-defaults "\$@"
EOF
done
chmod +x .mysql/bin/*
.mysql/bin/mysqld --version >/dev/null
