// Runs statemachine/binlog-pipeline.asl.json with aws-local-stepfunctions,
// each Task invoking the real function binary through `cargo lambda watch`
// (the real lambda_runtime). Prints one JSON line:
//   {"status": "SUCCEEDED", "output": ...} or {"status": "FAILED", "error": ..., "cause": ...}
//
// usage: node run-state-machine.mjs DEFINITION LAMBDA_URL INPUT_JSON [EXECUTION_ARN]
import { readFileSync } from 'node:fs';

// Node 20 lacks Promise.withResolvers, which aws-local-stepfunctions 3 uses.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
const { StateMachine } = await import('aws-local-stepfunctions');

const [definitionPath, lambdaUrl, inputJson, executionArn] = process.argv.slice(2);
const substitutions = {
  ListBinlogsFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:list-binlogs',
  ParseChunkFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:parse-chunk',
  FanOutByTableFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fan-out-by-table',
  CommitCheckpointFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:commit-checkpoint',
};
let text = readFileSync(definitionPath, 'utf8');
for (const [k, v] of Object.entries(substitutions)) text = text.replaceAll('${' + k + '}', v);
const definition = JSON.parse(text);

// Each Task state -> the binary that serves it.
const binaries = {
  ListBinlogs: 'list-binlogs',
  ParseChunk: 'parse-chunk',
  FanOutByTable: 'fan-out-by-table',
  CommitCheckpoint: 'commit-checkpoint',
};
const invoke = (binary) => async (input) => {
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
const handlers = Object.fromEntries(Object.entries(binaries).map(([s, b]) => [s, invoke(b)]));

const machineArn = 'arn:aws:states:us-east-1:123456789012:stateMachine:binlog-cdc';
const execArn = executionArn ?? `arn:aws:states:us-east-1:123456789012:execution:binlog-cdc:${Date.now()}`;
const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
const execution = machine.run(JSON.parse(inputJson), {
  overrides: {
    taskResourceLocalHandlers: handlers,
    retryIntervalOverrides: { ListBinlogs: 10, ParseChunk: 10, FanOutByTable: 10, CommitCheckpoint: 10 },
  },
  context: {
    Execution: { Id: execArn, Name: execArn.split(':').pop(), Input: JSON.parse(inputJson), StartTime: new Date().toISOString() },
    StateMachine: { Id: machineArn, Name: 'binlog-cdc' },
  },
});
try {
  const output = await execution.result;
  console.log(JSON.stringify({ status: 'SUCCEEDED', output }));
} catch (e) {
  // The Fail state's ErrorPath/CausePath arrive as the cause's name and message.
  const inner = e.cause instanceof Error ? e.cause : e;
  console.log(JSON.stringify({ status: 'FAILED', error: inner.name, cause: inner.message }));
}
