#!/usr/bin/env bash
# The offline checks of the deployment (part of scripts/test.sh):
# cfn-lint on every template, `sam validate --lint`, the IAM least-privilege
# check, the deploy-trap check (infra/check_deploy.py), asl-validator on the state machine, and `sam build` for arm64
# (cargo-lambda cross-compiles with zig; no Docker, no AWS account).
#   SKIP_SAM_BUILD=1 scripts/check-infra.sh   # everything but the build
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export PATH="$root/.venv/e2e/bin:$root/.venv/infra/bin:$PATH"

cfn-lint infra/*.yaml
echo "cfn-lint: infra/*.yaml clean"
(cd infra && sam validate --lint 2>&1 | grep -v -i telemetry | grep -v '^\s*$')
python3_infra="$root/.venv/infra/bin/python"
"$python3_infra" infra/check_policies.py --self-test
"$python3_infra" infra/check_deploy.py --self-test
(cd tests/e2e && npx --no-install asl-validator --json-path ../../statemachine/binlog-pipeline.asl.json)

if [ -z "${SKIP_SAM_BUILD:-}" ]; then
  # This proves that `sam build` cross-compiles every function for arm64.
  # Unless BUILD_FOR_DEPLOY=1, it builds without optimisation or LTO, which
  # takes a fraction of the time (a cold optimised build of the AWS SDKs
  # for a second target took over 15 minutes on 2 cores); the deployed
  # build (`sam build` by hand, infra/samconfig.toml) keeps the release profile.
  if [ -z "${BUILD_FOR_DEPLOY:-}" ]; then
    export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
      CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_DEBUG=false
  fi
  (cd infra && sam build --no-cached --build-dir "$root/.tmp/sam-build")
  for f in InitDbFunction ListBinlogsFunction ParseChunkFunction FanOutByTableFunction CommitCheckpointFunction; do
    bin="$root/.tmp/sam-build/$f/bootstrap"
    # ELF e_machine (offset 18, little-endian) 183 is AArch64.
    python3 -c 'import sys; b=open(sys.argv[1],"rb").read(20); sys.exit(0 if b[:4]==b"\x7fELF" and int.from_bytes(b[18:20],"little")==183 else 1)' "$bin" \
      || { echo "$bin is not an arm64 ELF executable" >&2; exit 1; }
  done
  echo "sam build: five arm64 bootstraps in .tmp/sam-build"
fi
