// Runs statemachine/binlog-pipeline.asl.json with aws-local-stepfunctions,
// each Task invoking the real function binary through `cargo lambda watch`
// (the real lambda_runtime). Prints one JSON line:
//   {"status": "SUCCEEDED", "output": ...} or {"status": "FAILED", "error": ..., "cause": ...}
//
// usage: node run-state-machine.mjs DEFINITION LAMBDA_URL INPUT_JSON [EXECUTION_ARN] [OPTIONS_JSON]
//
// OPTIONS_JSON (for the fault tests, all optional):
//   "faults": [{"state": "ParseChunk", "item": 1, "nth": 1, "times": 1, "kind": K, "error": NAME, "delayMs": MS}]
//     The Task state's invocations nth .. nth+times-1 (counted from 1 in this
//     execution, retries included; with "item", only the calls for the Map
//     item whose input has that "index") are broken:
//       "error":   the function runs to its end, then its answer is lost: the
//                  task fails with NAME (default Lambda.ServiceException);
//       "kill":    the function's process is killed (SIGKILL) delayMs after the
//                  call; the task fails with Runtime.ExitError, as on Lambda
//                  (unless the function had answered already);
//       "timeout": after delayMs the task fails with States.Timeout while the
//                  function goes on running, as a Lambda outliving its task does;
//       "delay":   the call starts delayMs late.
//   "binaries": the directory of the function binaries (for "kill": only
//     processes running an executable from there are killed).
//   "retryIntervalMs": the wait before each retry (default 10 ms; the
//     definition's IntervalSeconds and BackoffRate are not waited out here).
//   "startAt": a top-level state to start from, with INPUT_JSON as that
//     state's input: a redrive (Step Functions redrives the failed state with
//     its original input; a Map's redrive reruns all its iterations here,
//     which ParseChunk's idempotence makes equivalent).
// A failed execution's line also carries "failedState" (the top-level state
// that failed) and "redriveInput" (that state's input), for a redrive.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

// Node 20 lacks Promise.withResolvers, which aws-local-stepfunctions 3 uses.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
const { StateMachine } = await import('aws-local-stepfunctions');

const [definitionPath, lambdaUrl, inputJson, executionArn, optionsJson] = process.argv.slice(2);
const options = optionsJson ? JSON.parse(optionsJson) : {};
const substitutions = {
  ListBinlogsFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:list-binlogs',
  ParseChunkFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:parse-chunk',
  FanOutByTableFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fan-out-by-table',
  CommitCheckpointFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:commit-checkpoint',
};
let text = readFileSync(definitionPath, 'utf8');
for (const [k, v] of Object.entries(substitutions)) text = text.replaceAll('${' + k + '}', v);
const definition = JSON.parse(text);
if (options.startAt) definition.StartAt = options.startAt;

// Each Task state -> the binary that serves it.
const binaries = {
  ListBinlogs: 'list-binlogs',
  ParseChunk: 'parse-chunk',
  FanOutByTable: 'fan-out-by-table',
  CommitCheckpoint: 'commit-checkpoint',
};
const call = async (binary, input) => {
  const res = await fetch(`${lambdaUrl}/2015-03-31/functions/${binary}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  const body = await res.text();
  let parsed;
  try { parsed = JSON.parse(body); } catch { parsed = null; }
  if (res.status !== 200 || (parsed && parsed.errorType && parsed.errorMessage !== undefined)) {
    const err = new Error(parsed?.errorMessage ?? body);
    err.name = parsed?.errorType ?? `Lambda.${res.status}`;
    throw err;
  }
  return parsed;
};
const named = (name, message) => Object.assign(new Error(message), { name });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What the execution has produced so far, to rebuild a failed state's input.
const executionInput = JSON.parse(inputJson);
const recorded = { plan: executionInput.plan, chunks: new Map(), fanOut: executionInput.fanOut };
const topLevel = { ListBinlogs: 'ListBinlogs', ParseChunk: 'ParseChunks', FanOutByTable: 'FanOutByTable', CommitCheckpoint: 'CommitCheckpoint' };
let lastFailure = null;
const injected = [];
const taskErrors = []; // every failed task call, injected or not: {state, error}
const counts = {};

// Kills every process running BINARIES/BINARY (by /proc/PID/exe, so that
// another checkout's functions are left alone).
const killFunction = (binary) => {
  const exe = `${options.binaries}/${binary}`;
  let killed = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let target;
    try { target = readlinkSync(`/proc/${pid}/exe`); } catch { continue; }
    if (target === exe) { try { process.kill(Number(pid), 'SIGKILL'); killed += 1; } catch { /* gone */ } }
  }
  return killed;
};

const invoke = (state, binary) => async (input) => {
  const matching = (f) => f.state === state && (f.item === undefined || f.item === input?.index);
  const key = `${state}#${(options.faults ?? []).some((f) => matching(f) && f.item !== undefined) ? input.index : ''}`;
  const n = (counts[key] = (counts[key] ?? 0) + 1);
  const fault = (options.faults ?? []).find((f) => matching(f) && n >= f.nth && n < f.nth + (f.times ?? 1));
  try {
    let out;
    if (!fault) {
      out = await call(binary, input);
    } else {
      injected.push({ state, invocation: n, kind: fault.kind });
      if (fault.kind === 'error') {
        await call(binary, input).catch(() => {});
        throw named(fault.error ?? 'Lambda.ServiceException', `injected: the answer of ${state} #${n} was lost`);
      } else if (fault.kind === 'kill') {
        // Lambda answers a call whose runtime died with Runtime.ExitError;
        // the local emulator never answers it, so the answer is made here.
        let settled = false;
        const running = call(binary, input).finally(() => { settled = true; });
        running.catch(() => {});
        await sleep(fault.delayMs ?? 0);
        const lateKill = settled;
        injected[injected.length - 1].killed = killFunction(binary);
        injected[injected.length - 1].late = lateKill;
        if (!lateKill) {
          const died = sleep(3000).then(() => {
            throw named('Runtime.ExitError', `injected: ${state} #${n}'s process was killed (SIGKILL)`);
          });
          out = await Promise.race([running, died]);
        } else {
          out = await running;
        }
      } else if (fault.kind === 'timeout') {
        call(binary, input).catch(() => {});
        await sleep(fault.delayMs ?? 0);
        throw named('States.Timeout', `injected: ${state} #${n} timed out`);
      } else if (fault.kind === 'delay') {
        await sleep(fault.delayMs ?? 0);
        out = await call(binary, input);
      } else {
        throw new Error(`unknown fault kind ${fault.kind}`);
      }
    }
    if (state === 'ListBinlogs') recorded.plan = out;
    if (state === 'ParseChunk') recorded.chunks.set(input.index, out);
    if (state === 'FanOutByTable') recorded.fanOut = out;
    return out;
  } catch (e) {
    lastFailure = topLevel[state];
    taskErrors.push({ state, error: e.name });
    throw e;
  }
};
const handlers = Object.fromEntries(Object.entries(binaries).map(([s, b]) => [s, invoke(s, b)]));

// The input a top-level state had (ResultPaths add to the execution input).
const { plan: _p, chunks: _c, fanOut: _f, ...base } = executionInput;
const stateInput = (state) => {
  const chunks = [...recorded.chunks.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  switch (state) {
    case 'ListBinlogs': return base;
    case 'ParseChunks': return { ...base, plan: recorded.plan };
    case 'FanOutByTable': return { ...base, plan: recorded.plan, chunks };
    default: return { ...base, plan: recorded.plan, chunks, fanOut: recorded.fanOut };
  }
};

const machineArn = 'arn:aws:states:us-east-1:123456789012:stateMachine:binlog-cdc';
const execArn = executionArn ?? `arn:aws:states:us-east-1:123456789012:execution:binlog-cdc:${Date.now()}`;
// A redrive's StartAt leaves earlier states unreachable, which the validator refuses.
const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true, noValidate: Boolean(options.startAt) } });
const execution = machine.run(executionInput, {
  overrides: {
    taskResourceLocalHandlers: handlers,
    retryIntervalOverrides: Object.fromEntries(Object.keys(binaries).map((s) => [s, options.retryIntervalMs ?? 10])),
  },
  context: {
    Execution: { Id: execArn, Name: execArn.split(':').pop(), Input: JSON.parse(inputJson), StartTime: new Date().toISOString() },
    StateMachine: { Id: machineArn, Name: 'binlog-cdc' },
  },
});
try {
  const output = await execution.result;
  console.log(JSON.stringify({ status: 'SUCCEEDED', output, injected, taskErrors }));
} catch (e) {
  // The Fail state's ErrorPath/CausePath arrive as the cause's name and message.
  const inner = e.cause instanceof Error ? e.cause : e;
  const failedState = lastFailure ?? 'ListBinlogs';
  console.log(JSON.stringify({
    status: 'FAILED', error: inner.name, cause: inner.message, injected, taskErrors,
    failedState, redriveInput: stateInput(failedState),
  }));
}
// Calls left behind (a killed function's, a timed-out one's) must not keep
// this process alive.
process.exit(0);
