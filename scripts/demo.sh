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

dir=$(mktemp -d /tmp/binlog-cdc-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -s TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  bash scripts/local-mariadb.sh stop "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(bash scripts/local-mariadb.sh start "$dir")
moto_port=$(free_port); lambda_port=$(free_port)
setsid .venv/e2e/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$dir/moto.log" 2>&1 & pids+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
for _ in $(seq 1 100); do curl -sf "$AWS_ENDPOINT_URL/moto-api/" >/dev/null && break; sleep 0.1; done

# The bucket and the database secret (RDS format), as the stack would have them,
# and a consumer: the README's sample rule sends RunCommitted events to a queue.
secret_arn=$(.venv/e2e/bin/python - "$port" <<'PY'
import boto3, json, sys
boto3.client("s3").create_bucket(Bucket="binlog-cdc-demo")
sqs, events = boto3.client("sqs"), boto3.client("events")
sqs.create_queue(QueueName="run-committed")
events.put_rule(Name="run-committed", EventPattern=open("docs/run-committed-rule.json").read())
events.put_targets(Rule="run-committed", Targets=[
    {"Id": "queue", "Arn": "arn:aws:sqs:us-east-1:123456789012:run-committed"}])
# The state machine as Step Functions knows it: ListBinlogs asks which
# executions are running (aws-local-stepfunctions runs the definition itself).
boto3.client("stepfunctions").create_state_machine(
    name="binlog-cdc-pipeline", roleArn="arn:aws:iam::123456789012:role/binlog-cdc",
    definition=open("statemachine/binlog-pipeline.asl.json").read())
sm = boto3.client("secretsmanager")
print(sm.create_secret(Name="demo-db", SecretString=json.dumps(
    {"host": "127.0.0.1", "port": int(sys.argv[1]), "username": "cdc", "password": "cdc"}))["ARN"])
PY
)
cat >"$dir/lambda.env" <<ENV
BUCKET=binlog-cdc-demo
PREFIX=cdc
DB_SECRET_ARN=$secret_arn
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_ACCESS_KEY_ID=demo
AWS_SECRET_ACCESS_KEY=demo
AWS_REGION=us-east-1
VIEW=${VIEW:-both}
EVENT_BUS_NAME=default
ENV
PATH="$PWD/.venv/e2e/bin:$PATH" setsid .venv/e2e/bin/cargo-lambda lambda watch --profile "$profile" --ignore-changes -A 127.0.0.1 -P "$lambda_port" \
  --env-file "$dir/lambda.env" >"$dir/lambda.log" 2>&1 & pids+=($!)
for _ in $(seq 1 600); do (echo > "/dev/tcp/127.0.0.1/$lambda_port") 2>/dev/null && break; sleep 0.2; done
lambda="http://127.0.0.1:$lambda_port"

echo "== init-db (CloudFormation Create): preflight, retention, demo data, serverId.json" >&2
curl -sf -X POST "$lambda/2015-03-31/functions/init-db/invocations" -d "{
  \"RequestType\": \"Create\", \"ServiceToken\": \"demo\", \"ResponseURL\": \"$AWS_ENDPOINT_URL/binlog-cdc-demo/cfn-response.json\",
  \"StackId\": \"demo-stack\", \"RequestId\": \"1\", \"ResourceType\": \"Custom::InitDb\", \"LogicalResourceId\": \"InitDb\",
  \"ResourceProperties\": {\"RetentionHours\": \"24\", \"DemoData\": \"true\", \"DemoSchema\": \"martzcodes\"}}" | head -c 400; echo >&2

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
