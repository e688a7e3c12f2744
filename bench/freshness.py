"""Freshness of the pipeline on the local stack (scripts/bench-freshness.sh
starts the stack and runs this): commits single-row transactions into
bench.ticks at a steady rate, starts an execution of the state machine every
--schedule seconds unless one is running (the overlap check would skip that
tick), and records, per change, when it was first in a published object under
the prefix (bench/ticks/, polled) and when a RunCommitted event naming that
object reached the consumer's queue. Prints the seconds from commit to each,
p50, p99 and max, as a markdown table; exits 1 if a change never arrived.

With --follow N (the low-latency mode), executions start with
{"follow": {"pollSeconds": N}}, and one that hands over (HandOver) has its
successor started at once with the input it asked for, as Step Functions
would; the schedule's ticks are then skipped while the chain runs.
"""

import argparse
import json
import subprocess
import sys
import threading
import time

import boto3

BUCKET, PREFIX, QUEUE = "binlog-cdc-demo", "cdc/bench/ticks/", "run-committed"


class Writer:
    """One mariadb client; each INSERT autocommits, and its id is read back
    once it has (the commit time is taken then)."""

    def __init__(self, socket):
        self.proc = subprocess.Popen(
            ["mariadb", "--no-defaults", f"--socket={socket}", "-uroot", "-N", "-B", "--unbuffered"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def insert(self):
        self.proc.stdin.write("INSERT INTO bench.ticks (note) VALUES ('tick'); SELECT LAST_INSERT_ID();\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline()), time.time()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def write(args, committed, done):
    writer = Writer(args.socket)
    start = time.time()
    n = 0
    while time.time() - start < args.seconds:
        key, at = writer.insert()
        committed[key] = at
        n += 1
        time.sleep(max(0.0, start + n / args.rate - time.time()))
    writer.close()
    done.set()


def schedule(args, stop, runs):
    """An execution every --schedule seconds unless one runs on; under
    --follow, a handed-over execution's successor at once."""
    log = open(args.log, "a")
    first = {"follow": {"pollSeconds": args.follow}} if args.follow else {}
    running, out, handed_over, next_tick = None, None, None, time.time()

    def start(input_, name):
        out = f"{args.log}.{runs['started']}.json"
        runs["started"] += 1
        arn = f"arn:aws:states:us-east-1:123456789012:execution:binlog-cdc-pipeline:{name}"
        proc = subprocess.Popen(
            ["node", "tests/e2e/run-state-machine.mjs", "statemachine/binlog-pipeline.asl.json", args.LAMBDA,
             json.dumps(input_), arn], stdout=open(out, "w"), stderr=log)
        return proc, out

    while not stop.is_set():
        if running is not None and running.poll() is not None:
            line = json.loads(open(out).read() or "{}")
            started = line.get("startedExecutions") or []
            handed_over = started[0] if started else None
            if line.get("status") != "SUCCEEDED":
                print(f"an execution ended {line.get('status')}: {out}", file=sys.stderr)
            running = None
        if running is None and handed_over is not None:
            running, out = start(handed_over["Input"], handed_over["Name"])
            runs["handedOver"] += 1
            handed_over = None
        if time.time() >= next_tick:
            next_tick += args.schedule
            if running is None:
                running, out = start(first, f"tick-{runs['started']}")
            else:
                runs["skipped"] += 1
        stop.wait(0.1)
    if running is not None:
        # Every change has arrived (or the deadline passed): a follower
        # would poll on until its history runs out.
        running.terminate()
        running.wait()


def watch_objects(stop, seen):
    """Every change's first appearance under the prefix."""
    s3 = boto3.client("s3")
    known = set()
    while not stop.is_set():
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"] not in known]
        now = time.time()
        for key in keys:
            known.add(key)
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
            for line in body.splitlines():
                event = json.loads(line)
                if "keys" in event:  # a row event (the table's CREATE is one too)
                    seen.setdefault(int(event["keys"]["id"]), (now, key))
        stop.wait(0.25)


def watch_events(stop, announced):
    """When each published key was named by a RunCommitted event received."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    while not stop.is_set():
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            now = time.time()
            for key in json.loads(m["Body"])["detail"]["outputs"]:
                announced.setdefault(key, now)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def percentile(values, p):
    """Nearest rank."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--lambda", dest="LAMBDA", required=True)
    parser.add_argument("--rate", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--schedule", type=float, default=60)
    parser.add_argument("--follow", type=int, default=0, help="pollSeconds of the low-latency mode (0: off)")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    committed, seen, announced = {}, {}, {}
    runs = {"started": 0, "skipped": 0, "handedOver": 0}
    writes_done, stop, stop_schedule = threading.Event(), threading.Event(), threading.Event()
    threads = [threading.Thread(target=write, args=(args, committed, writes_done)),
               threading.Thread(target=schedule, args=(args, stop_schedule, runs)),
               threading.Thread(target=watch_objects, args=(stop, seen)),
               threading.Thread(target=watch_events, args=(stop, announced))]
    for t in threads:
        t.start()
    writes_done.wait()
    # Every change should be announced within two intervals of the last write.
    deadline = time.time() + 2 * args.schedule + 60
    while time.time() < deadline and not all(k in seen and seen[k][1] in announced for k in committed):
        time.sleep(0.5)
    stop_schedule.set()
    stop.set()
    for t in threads:
        t.join()

    missing = [k for k in committed if k not in seen or seen[k][1] not in announced]
    to_object = [seen[k][0] - at for k, at in committed.items() if k in seen]
    to_event = [announced[seen[k][1]] - at for k, at in committed.items() if k in seen and seen[k][1] in announced]
    mode = f"follow, pollSeconds {args.follow}" if args.follow else "no follow"
    print(f"{len(committed)} changes at {args.rate:g}/s for {args.seconds:g} s; a tick every {args.schedule:g} s ({mode}): "
          f"{runs['started']} executions started ({runs['handedOver']} by a hand-over), "
          f"{runs['skipped']} ticks skipped (one was running)\n")
    print("| seconds from commit to | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    for name, values in (("its object under the prefix", to_object), ("its RunCommitted event", to_event)):
        if values:
            print(f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} | {max(values):.1f} |")
    if missing:
        print(f"\n{len(missing)} changes never arrived, e.g. id {missing[0]}: see {args.log}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
