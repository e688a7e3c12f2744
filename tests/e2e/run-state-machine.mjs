// Runs a state machine definition (statemachine/binlog-pipeline.asl.json, or
// a test's own) with aws-local-stepfunctions, each Task invoking the real
// function binary through `cargo lambda watch` (the real lambda_runtime),
// and enforces the AWS quotas aws-local-stepfunctions does not. Prints one
// JSON line:
//   {"status": "SUCCEEDED", "output": ..., "quotas": {...}} or
//   {"status": "FAILED", "error": ..., "cause": ..., "quotas": {...}}
//
// usage: node run-state-machine.mjs DEFINITION LAMBDA_URL INPUT_JSON|@FILE [EXECUTION_ARN] [OPTIONS_JSON]
//
// A Task's function is the last segment of its Resource ARN (after
// substitution): list-binlogs, parse-chunk, fan-out-by-table,
// commit-checkpoint, or `runner-test`, a function built into this runner for
// the quota tests (input {"echo": V, "padBytes": N, "sleepMs": M}: answers
// {"echo": V, "pad": "x" * N} after M ms). The service integration
// arn:aws:states:::states:startExecution (HandOver) is answered here: the
// request is recorded in the line's "startedExecutions" ({Name, Input,
// StateMachineArn}), for the caller to run next, as Step Functions would.
//
// Quotas, as a Standard workflow enforces them:
//   - 262,144 bytes (UTF-8 JSON) for every state's input (as it enters, and a
//     Task's effective input after Parameters), every state's output (after
//     ResultSelector/ResultPath/OutputPath), each Map item (after
//     ItemSelector), a Map's whole result array, and each task result.
//     Beyond it the execution fails with States.DataLimitExceeded, which no
//     Retry or Catch handles: the runner aborts the execution, no further
//     function is called, and the outcome is that failure whatever the
//     definition would have done next.
//   - 6,291,456 bytes for a Lambda response: the task fails with
//     Lambda.ServiceException (cause Function.ResponseSizeTooLarge), which a
//     Retry or Catch may handle.
//   - 25,000 history events: counted as Step Functions counts them (state
//     entered and exited; a Lambda task's scheduled, started and its
//     outcome on every attempt; a Map's started and its outcome; each
//     iteration's started and its outcome; the execution's started and its
//     outcome). Reaching the quota fails the execution (States.Runtime,
//     uncatchable, like the data limit).
//   - each Task's TimeoutSeconds (States.Timeout, by aws-local-stepfunctions)
//     and each function's own timeout (Sandbox.Timedout, a Lambda failure:
//     the function is not stopped here, as a timed-out Lambda's work may
//     have had effects). Function timeouts default to infra/template.yaml's;
//     "functionTimeoutsMs" overrides them.
// The line's "quotas": {"largestPayload": {"bytes", "state", "what"},
// "historyEvents", "violation"}.
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
//     which the steps' idempotence makes equivalent).
//   "functionTimeoutsMs": {"parse-chunk": 900000, ...}.
//   "waitMs": how long every Wait state waits (default: its own seconds).
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

const PAYLOAD_LIMIT = 262144;
const LAMBDA_RESPONSE_LIMIT = 6291456;
const HISTORY_LIMIT = 25000;
// infra/template.yaml's Timeout of each function, in ms.
const FUNCTION_TIMEOUTS_MS = {
  'list-binlogs': 300000, 'parse-chunk': 900000, 'fan-out-by-table': 900000, 'commit-checkpoint': 600000,
  'runner-test': 900000,
};

const [definitionPath, lambdaUrl, inputArg, executionArn, optionsJson] = process.argv.slice(2);
// "@PATH": the input is in a file (one argument may not pass 128 KiB).
const inputJson = inputArg.startsWith('@') ? readFileSync(inputArg.slice(1), 'utf8') : inputArg;
const options = optionsJson ? JSON.parse(optionsJson) : {};
const functionTimeoutsMs = { ...FUNCTION_TIMEOUTS_MS, ...(options.functionTimeoutsMs ?? {}) };
const account = 'arn:aws:lambda:us-east-1:123456789012:function:';
const substitutions = {
  ListBinlogsFunctionArn: `${account}list-binlogs`,
  ParseChunkFunctionArn: `${account}parse-chunk`,
  FanOutByTableFunctionArn: `${account}fan-out-by-table`,
  CommitCheckpointFunctionArn: `${account}commit-checkpoint`,
};
let text = readFileSync(definitionPath, 'utf8');
for (const [k, v] of Object.entries(substitutions)) text = text.replaceAll('${' + k + '}', v);
const definition = JSON.parse(text);
if (options.startAt) definition.StartAt = options.startAt;

// Every Task state, at any depth -> its function (the Resource's last segment).
const taskFunctions = {};
const findTasks = (states) => {
  for (const [name, s] of Object.entries(states ?? {})) {
    if (s.Type === 'Task') taskFunctions[name] = s.Resource.split(':').pop();
    const inner = s.ItemProcessor ?? s.Iterator;
    if (inner) findTasks(inner.States);
    for (const b of s.Branches ?? []) findTasks(b.States);
  }
};
findTasks(definition.States);

const named = (name, message) => Object.assign(new Error(message), { name });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bytesOf = (v) => (v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v), 'utf8'));

// ---------------------------------------------------------------- quotas
const quotas = { largestPayload: { bytes: 0, state: null, what: null }, historyEvents: 0, violation: null };
let execution = null;
const violate = (error, cause, state) => {
  if (quotas.violation) return;
  quotas.violation = { error, cause, state };
  execution?.abort();
};
const measure = (state, what, value) => {
  const bytes = bytesOf(value);
  if (bytes > quotas.largestPayload.bytes) quotas.largestPayload = { bytes, state, what };
  if (bytes > PAYLOAD_LIMIT) {
    violate('States.DataLimitExceeded', `the ${what} of state ${state} is ${bytes} bytes, over the quota of ${PAYLOAD_LIMIT}`, state);
  }
};
const history = (n, state) => {
  quotas.historyEvents += n;
  if (quotas.historyEvents > HISTORY_LIMIT) {
    violate('States.Runtime', `the execution history reached ${HISTORY_LIMIT} events (the quota for a Standard workflow)`, state);
  }
};
// Called before every function call: events dispatched so far (delivered on
// microtasks) have been checked once a macrotask turn has passed.
const gate = async () => {
  await new Promise((r) => setImmediate(r));
  if (quotas.violation) throw named(quotas.violation.error, quotas.violation.cause);
};

// What the execution has done, for a redrive: each top-level state's input
// as it entered, and the top-level state that failed last.
const entered = {};
let lastFailure = null;
const mapResults = {}; // Map state -> {bytes, items}: its result array's size
const onEvent = (e) => {
  const top = e.index === undefined && !e.parentState;
  switch (e.type) {
    case 'ExecutionStarted': history(1); break;
    case 'ExecutionSucceeded': case 'ExecutionFailed': history(1); break;
    case 'StateEntered':
      history(1 + (e.state.type === 'Map' ? 1 : 0), e.state.name);
      measure(e.state.name, 'input', e.state.input);
      if (top) entered[e.state.name] = e.state.input;
      if (e.state.type === 'Map') mapResults[e.state.name] = { bytes: 2, items: 0 };
      break;
    case 'StateExited':
      history(1 + (e.state.type === 'Map' ? 1 : 0));
      measure(e.state.name, 'output', e.state.output);
      break;
    case 'StateFailed':
      if (e.state.type === 'Map') history(1);
      if (top && e.state.type !== 'Fail') lastFailure = e.state.name;
      break;
    case 'MapIterationStarted':
      history(1);
      measure(e.parentState.name, `item ${e.index}`, e.input);
      break;
    case 'MapIterationSucceeded': {
      history(1);
      const r = mapResults[e.parentState.name];
      if (r) {
        r.bytes += bytesOf(e.output) + (r.items > 0 ? 1 : 0);
        r.items += 1;
        if (r.bytes > quotas.largestPayload.bytes) quotas.largestPayload = { bytes: r.bytes, state: e.parentState.name, what: 'result' };
        if (r.bytes > PAYLOAD_LIMIT) violate('States.DataLimitExceeded', `the result of Map state ${e.parentState.name} passed ${PAYLOAD_LIMIT} bytes`, e.parentState.name);
      }
      break;
    }
    case 'MapIterationFailed': history(1); break;
    default: break;
  }
};

// ---------------------------------------------------------------- functions
const callLambda = async (fn, input) => {
  const res = await fetch(`${lambdaUrl}/2015-03-31/functions/${fn}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  const body = await res.text();
  let parsed;
  try { parsed = JSON.parse(body); } catch { parsed = null; }
  if (res.status !== 200 || (parsed && parsed.errorType && parsed.errorMessage !== undefined)) {
    throw named(parsed?.errorType ?? `Lambda.${res.status}`, parsed?.errorMessage ?? body);
  }
  if (Buffer.byteLength(body, 'utf8') > LAMBDA_RESPONSE_LIMIT) {
    throw named('Lambda.ServiceException', `Function.ResponseSizeTooLarge: ${fn} answered ${Buffer.byteLength(body, 'utf8')} bytes, over Lambda's ${LAMBDA_RESPONSE_LIMIT}`);
  }
  return parsed;
};
const runnerTest = async (input) => {
  await sleep(input?.sleepMs ?? 0);
  const out = { echo: input?.echo ?? null, pad: 'x'.repeat(input?.padBytes ?? 0) };
  if (bytesOf(out) > LAMBDA_RESPONSE_LIMIT) {
    throw named('Lambda.ServiceException', `Function.ResponseSizeTooLarge: runner-test answered ${bytesOf(out)} bytes`);
  }
  return out;
};
const startedExecutions = [];
const startExecution = async (input) => {
  startedExecutions.push(input);
  return { ExecutionArn: `${input.StateMachineArn.replace(':stateMachine:', ':execution:')}:${input.Name}`, StartDate: new Date().toISOString() };
};
const builtIn = { 'runner-test': runnerTest, startExecution };
// A call, failing with Sandbox.Timedout when it outlives its function's timeout.
const call = (fn, input) => {
  const running = builtIn[fn] ? builtIn[fn](input) : callLambda(fn, input);
  running.catch(() => {});
  const limit = functionTimeoutsMs[fn] ?? 900000;
  let timer;
  const timedOut = new Promise((_, reject) => {
    timer = setTimeout(() => reject(named('Sandbox.Timedout', `${fn} timed out after ${limit} ms (the function's own timeout)`)), limit);
  });
  return Promise.race([running, timedOut]).finally(() => clearTimeout(timer));
};

// Kills every process running BINARIES/FN (by /proc/PID/exe, so that
// another checkout's functions are left alone).
const killFunction = (fn) => {
  const exe = `${options.binaries}/${fn}`;
  let killed = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let target;
    try { target = readlinkSync(`/proc/${pid}/exe`); } catch { continue; }
    if (target === exe) { try { process.kill(Number(pid), 'SIGKILL'); killed += 1; } catch { /* gone */ } }
  }
  return killed;
};

const injected = [];
const taskErrors = []; // every failed task call, injected or not: {state, error}
const calls = []; // every function call, in order: {state, ms} (ms: how long it took, when it answered)
const counts = {};

// A call broken as `fault` says.
const faulty = async (state, fn, input, fault, n) => {
  injected.push({ state, invocation: n, kind: fault.kind });
  if (fault.kind === 'error') {
    await call(fn, input).catch(() => {});
    throw named(fault.error ?? 'Lambda.ServiceException', `injected: the answer of ${state} #${n} was lost`);
  }
  if (fault.kind === 'kill') {
    // Lambda answers a call whose runtime died with Runtime.ExitError;
    // the local emulator never answers it, so the answer is made here.
    let settled = false;
    const running = call(fn, input).finally(() => { settled = true; });
    running.catch(() => {});
    await sleep(fault.delayMs ?? 0);
    const late = settled;
    injected[injected.length - 1].killed = killFunction(fn);
    injected[injected.length - 1].late = late;
    if (late) return running;
    const died = sleep(3000).then(() => {
      throw named('Runtime.ExitError', `injected: ${state} #${n}'s process was killed (SIGKILL)`);
    });
    return Promise.race([running, died]);
  }
  if (fault.kind === 'timeout') {
    call(fn, input).catch(() => {});
    await sleep(fault.delayMs ?? 0);
    throw named('States.Timeout', `injected: ${state} #${n} timed out`);
  }
  if (fault.kind === 'delay') {
    await sleep(fault.delayMs ?? 0);
    return call(fn, input);
  }
  throw new Error(`unknown fault kind ${fault.kind}`);
};

const invoke = (state, fn) => async (input) => {
  await gate();
  measure(state, 'effective input', input);
  history(3, state); // scheduled, started, and its outcome
  const record = { state, ms: 0 };
  calls.push(record);
  const started = Date.now();
  const matching = (f) => f.state === state && (f.item === undefined || f.item === input?.index);
  const key = `${state}#${(options.faults ?? []).some((f) => matching(f) && f.item !== undefined) ? input.index : ''}`;
  const n = (counts[key] = (counts[key] ?? 0) + 1);
  const fault = (options.faults ?? []).find((f) => matching(f) && n >= f.nth && n < f.nth + (f.times ?? 1));
  try {
    const out = fault ? await faulty(state, fn, input, fault, n) : await call(fn, input);
    record.ms = Date.now() - started;
    measure(state, 'task result', out);
    if (quotas.violation) throw named(quotas.violation.error, quotas.violation.cause);
    return out;
  } catch (e) {
    taskErrors.push({ state, error: e.name });
    throw e;
  }
};
const handlers = Object.fromEntries(Object.entries(taskFunctions).map(([s, fn]) => [s, invoke(s, fn)]));

// ---------------------------------------------------------------- run
const machineArn = 'arn:aws:states:us-east-1:123456789012:stateMachine:binlog-cdc-pipeline';
const execArn = executionArn ?? `arn:aws:states:us-east-1:123456789012:execution:binlog-cdc-pipeline:${Date.now()}`;
// A redrive's StartAt leaves earlier states unreachable, which the validator refuses.
const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true, noValidate: Boolean(options.startAt) } });
execution = machine.run(JSON.parse(inputJson), {
  overrides: {
    taskResourceLocalHandlers: handlers,
    retryIntervalOverrides: Object.fromEntries(Object.keys(taskFunctions).map((s) => [s, options.retryIntervalMs ?? 10])),
    ...(options.waitMs === undefined ? {} : {
      waitTimeOverrides: Object.fromEntries(Object.entries(definition.States).filter(([, st]) => st.Type === 'Wait').map(([name]) => [name, options.waitMs])),
    }),
  },
  context: {
    Execution: { Id: execArn, Name: execArn.split(':').pop(), StartTime: new Date().toISOString() },
    StateMachine: { Id: machineArn, Name: 'binlog-cdc-pipeline' },
  },
});
const events = (async () => { for await (const e of execution.eventLogs) onEvent(e); })();
let line;
try {
  const output = await execution.result;
  await events;
  line = { status: 'SUCCEEDED', output };
} catch (e) {
  await Promise.race([events, sleep(100)]);
  // The Fail state's ErrorPath/CausePath arrive as the cause's name and message.
  const inner = e.cause instanceof Error ? e.cause : e;
  const failedState = lastFailure ?? definition.StartAt;
  line = {
    status: 'FAILED', error: inner.name, cause: inner.message,
    failedState, redriveInput: entered[failedState] ?? JSON.parse(inputJson),
  };
}
measure('(execution)', 'output', line.output);
if (quotas.violation) {
  // Terminal, whatever the definition did after it.
  const failedState = quotas.violation.state ?? lastFailure ?? definition.StartAt;
  line = { status: 'FAILED', error: quotas.violation.error, cause: quotas.violation.cause, failedState, redriveInput: entered[failedState] };
}
// Calls left behind (a killed function's, a timed-out one's) must not keep
// this process alive: exit once the line is written (a pipe takes a large
// line asynchronously).
process.stdout.write(`${JSON.stringify({ ...line, injected, taskErrors, calls, quotas, startedExecutions })}\n`, () => process.exit(0));
