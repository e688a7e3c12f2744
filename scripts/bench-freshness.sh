#!/usr/bin/env bash
# Freshness: how many seconds after a change commits it is in a published
# object under the prefix, and in a RunCommitted event a consumer's rule
# received. On the local stack (scripts/local-stack.sh: MariaDB, moto, the
# functions in cargo lambda watch, the state machine in the runner), single-row
# transactions commit at a steady rate while executions start on a schedule,
# as EventBridge Scheduler starts them (a tick while an execution runs is
# skipped, as the overlap check skips it). Prints a markdown table.
#   [RATE=5] [WRITE_SECONDS=180] [SCHEDULE_SECONDS=60] [FOLLOW=0] [PROFILE=release] scripts/bench-freshness.sh
# RATE: transactions a second; WRITE_SECONDS: how long they go on;
# SCHEDULE_SECONDS: the schedule's interval (rate(1 minute), EventBridge's
# shortest, by default; the stack's default is rate(5 minutes)); FOLLOW: the
# low-latency mode's pollSeconds (FollowPollSeconds; 0: off).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
bash scripts/ensure-deps.sh demo
profile=${PROFILE:-release}
cargo build --bins --locked --profile "$profile"

LAMBDA_ENV="OUTPUT_FORMAT=jsonl"
# shellcheck source=scripts/local-stack.sh
source scripts/local-stack.sh

mariadb --no-defaults --socket="$dir/sock" -uroot -e "
  CREATE DATABASE bench; CREATE TABLE bench.ticks (id BIGINT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(32))"
echo
.venv/e2e/bin/python bench/freshness.py --socket "$dir/sock" --lambda "$lambda" \
  --rate "${RATE:-5}" --seconds "${WRITE_SECONDS:-180}" --schedule "${SCHEDULE_SECONDS:-60}" \
  --follow "${FOLLOW:-0}" --log "$dir/runs.log"
