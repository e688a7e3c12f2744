# The local stack the demo and the freshness benchmark run on, sourced by
# them (after `cargo build --bins --profile "$profile"`): a throwaway MariaDB
# (with the caller's extra mariadbd options, LOCAL_MARIADB_OPTS), moto server
# as S3, Secrets Manager, Step Functions, EventBridge and SQS, the bucket,
# the database secret, a consumer's queue for RunCommitted events, the five
# functions served by `cargo lambda watch` (LAMBDA_ENV: extra settings, one
# per line) and init-db's Create (INIT_DB_PROPERTIES). Sets dir, port,
# lambda, AWS_ENDPOINT_URL; stops everything on exit.
#   needs: profile (the cargo profile the functions were built with)
dir=$(mktemp -d /tmp/binlog-cdc-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -s TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  bash scripts/local-mariadb.sh stop "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# shellcheck disable=SC2086
port=$(bash scripts/local-mariadb.sh start "$dir" ${LOCAL_MARIADB_OPTS:-})
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
${LAMBDA_ENV:-}
ENV
PATH="$PWD/.venv/e2e/bin:$PATH" setsid .venv/e2e/bin/cargo-lambda lambda watch --profile "$profile" --ignore-changes -A 127.0.0.1 -P "$lambda_port" \
  --env-file "$dir/lambda.env" >"$dir/lambda.log" 2>&1 & pids+=($!)
for _ in $(seq 1 600); do (echo > "/dev/tcp/127.0.0.1/$lambda_port") 2>/dev/null && break; sleep 0.2; done
lambda="http://127.0.0.1:$lambda_port"

init_props=${INIT_DB_PROPERTIES:-'{"RetentionHours": "24"}'}
echo "== init-db (CloudFormation Create): preflight, retention, serverId.json; $init_props" >&2
curl -sf -X POST "$lambda/2015-03-31/functions/init-db/invocations" -d "{
  \"RequestType\": \"Create\", \"ServiceToken\": \"demo\", \"ResponseURL\": \"$AWS_ENDPOINT_URL/binlog-cdc-demo/cfn-response.json\",
  \"StackId\": \"demo-stack\", \"RequestId\": \"1\", \"ResourceType\": \"Custom::InitDb\", \"LogicalResourceId\": \"InitDb\",
  \"ResourceProperties\": $init_props}" | head -c 400; echo >&2

