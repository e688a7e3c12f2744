#!/usr/bin/env bash
# The main job, locally, on a fresh machine: a throwaway MariaDB, moto server
# as S3 and Secrets Manager, the five functions served by `cargo lambda watch`,
# and the state machine definition run by aws-local-stepfunctions. init-db
# loads the original's demo data (the `tasks` table); the state machine runs
# twice with writes in between; then the S3 tree, meta.json, the RunCommitted
# events a consumer's rule received, `binlog-cdc status` and the functions'
# metric lines are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
# Only what the demo uses; the demo profile (Cargo.toml) compiles in less
# time. DEMO_PROFILE=dev reuses the tests' build (scripts/test.sh runs the demo).
bash scripts/ensure-deps.sh demo
profile=${DEMO_PROFILE:-demo}
bin_dir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")
cargo build --bins --locked --profile "$profile"

INIT_DB_PROPERTIES='{"RetentionHours": "24", "DemoData": "true", "DemoSchema": "martzcodes"}'
# shellcheck source=scripts/local-stack.sh
source scripts/local-stack.sh

run() {
  echo "== state machine run: input $1" >&2
  local out
  out=$(node tests/e2e/run-state-machine.mjs statemachine/binlog-pipeline.asl.json "$lambda" "$1")
  echo "$out"
  case "$out" in
    *'"status":"SUCCEEDED"'*) ;;
    *) echo "the state machine run did not succeed; the functions' log: $dir/lambda.log" >&2; tail -20 "$dir/lambda.log" >&2; exit 1 ;;
  esac
}
run '{}'
mariadb --no-defaults --socket="$dir/sock" -uroot --default-character-set=utf8mb4 -e "
  UPDATE martzcodes.tasks SET done = 1, title = CONCAT(title, ' ✓') WHERE task_id > 3;
  FLUSH BINARY LOGS;
  INSERT INTO martzcodes.tasks (title, description) VALUES ('Task 6', 'after the rotation');
  DELETE FROM martzcodes.tasks WHERE task_id = 4;"
run '{}'

echo "== the bucket" >&2
.venv/e2e/bin/python - <<'PY'
import boto3, json
s3 = boto3.client("s3")
for o in s3.list_objects_v2(Bucket="binlog-cdc-demo").get("Contents", []):
    print(f'{o["Size"]:>8}  s3://binlog-cdc-demo/{o["Key"]}')
print("== cdc/meta.json")
print(s3.get_object(Bucket="binlog-cdc-demo", Key="cdc/meta.json")["Body"].read().decode())
print("== RunCommitted events received (EventBridge rule docs/run-committed-rule.json -> SQS)")
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName="run-committed")["QueueUrl"]
while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
    for m in msgs:
        print(json.dumps(json.loads(m["Body"])["detail"]))
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
PY

echo "== binlog-cdc status (exit 0: healthy)" >&2
"$bin_dir/binlog-cdc" status --url "mysql://cdc:cdc@127.0.0.1:$port" --out s3://binlog-cdc-demo/cdc
echo "== the functions' metrics (CloudWatch embedded metric format lines in their logs)" >&2
grep -h '"_aws"' "$dir/lambda.log" | tail -4 || true
