#!/usr/bin/env python3
"""Fails on an IAM grant in infra/template.yaml that is wider than it needs to be
(and on a state machine placeholder that DefinitionSubstitutions does not fill).

Every Allow statement the template writes itself (function and state machine
`Policies`, IAM roles and policies) is checked, and every managed policy a
role carries, those SAM attaches to a role it makes included:
- no `*` action and no `service:*` action;
- no `*` resource;
- a resource with a `*` in it must be one of WILDCARD_RESOURCES below, each
  with the reason no narrower ARN exists;
- S3 object grants must name the bucket *and* the prefix parameter;
- SAM policy templates are allowed only from SAM_POLICY_TEMPLATES, which
  scope themselves to one named resource;
- AWS managed policies only from MANAGED_POLICIES, each under its condition
  (network interfaces only under InVpc: SAM attaches them to a function's
  role whenever VpcConfig is present, so the functions have roles of their
  own).

Run: .venv/infra/bin/python infra/check_policies.py [template]
(`--self-test` checks that the checker fails on wide grants.)
"""

import copy
import json
import sys
from pathlib import Path

from cfnlint.decode import decode

# Resource wildcards that cannot be narrower, with the reason.
WILDCARD_RESOURCES = {
    # parse-chunk writes, fan-out reads and commit deletes one object per
    # table and chunk, named after run ids that exist only at run time.
    '{"Fn::Sub": "${OutputBucket.Arn}/${Prefix}staging/*"}': "staged parts of any run",
    # parse-chunk reads the schema history of whichever table a statement
    # names: any table name.
    '{"Fn::Sub": "${OutputBucket.Arn}/${Prefix}schemas/*"}': "schema history of any table",
    # fan-out writes {schema}/{table}/... and all/...: any table name.
    # The checkpoint and serverId.json are carved out by an explicit Deny.
    '{"Fn::Sub": "${OutputBucket.Arn}/${Prefix}*"}': "per-table outputs of any table",
    # commit-checkpoint keeps a Glue table per source table, named after
    # tables that exist only at run time, in the stack's database only.
    '{"Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/${AthenaDatabaseName}/*"}': "Glue tables of any source table",
}
# StepFunctionsExecutionPolicy: states:StartExecution on one state machine
# named in the template (the pipeline's HandOver starts its next execution).
SAM_POLICY_TEMPLATES = {"LambdaInvokePolicy", "StepFunctionsExecutionPolicy"}
# AWS managed policies a role may carry, with the reason and the condition
# it must be under (None: always).
MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole": (None, "CloudWatch Logs: log groups and streams on *"),
    "service-role/AWSLambdaVPCAccessExecutionRole": ("InVpc", "network interfaces on *, only in a VPC"),
}


def as_list(v):
    return v if isinstance(v, list) else [v]


def key(v):
    return json.dumps(v, sort_keys=True)


def managed_policy_problem(name, arn):
    """Why a managed policy on a role is wrong (None: it is on the list,
    under its condition)."""
    condition = None
    if isinstance(arn, dict) and "Fn::If" in arn:
        condition, arn = arn["Fn::If"][0], arn["Fn::If"][1]
    text = json.dumps(arn)
    for policy, (needs, _reason) in MANAGED_POLICIES.items():
        if f"iam::aws:policy/{policy}" in text:
            if needs is not None and condition != needs:
                return f"{name}: managed policy {policy} is not under the {needs} condition"
            return None
    return f"{name}: managed policy {text} (write the statements out)"


def sam_attached(name, res):
    """The managed policies SAM attaches to a function it makes the role of:
    CloudWatch Logs always, and network interfaces whenever VpcConfig is
    present (an !If that leaves the function outside a VPC included)."""
    props = res.get("Properties", {}) or {}
    if res.get("Type") != "AWS::Serverless::Function" or "Role" in props:
        return
    yield name, {"ManagedPolicy": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
    if "VpcConfig" in props:
        yield name, {"ManagedPolicy": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}


def statements(template):
    """(resource name, statement) for every policy statement in the template,
    and the managed policies SAM attaches."""
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {}) or {}
        kind = res.get("Type", "")
        docs = []
        yield from sam_attached(name, res)
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for pol in as_list(props.get("Policies", [])):
                if isinstance(pol, dict) and "Statement" in pol:
                    docs.append(pol)
                elif isinstance(pol, dict):
                    for tpl in pol:
                        yield name, {"SamPolicyTemplate": tpl}
                else:
                    yield name, {"ManagedPolicy": pol}
        elif kind == "AWS::IAM::Role":
            for pol in props.get("Policies", []):
                docs.append(pol.get("PolicyDocument", {}))
            for mp in props.get("ManagedPolicyArns", []):
                yield name, {"ManagedPolicy": mp}
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(props.get("PolicyDocument", {}))
        for doc in docs:
            for st in as_list(doc.get("Statement", [])):
                yield name, st


def problems(template):
    out = []
    for name, st in statements(template):
        if "SamPolicyTemplate" in st:
            if st["SamPolicyTemplate"] not in SAM_POLICY_TEMPLATES:
                out.append(f"{name}: SAM policy template {st['SamPolicyTemplate']} is not on the list")
            continue
        if "ManagedPolicy" in st:
            problem = managed_policy_problem(name, st["ManagedPolicy"])
            if problem:
                out.append(problem)
            continue
        if st.get("Effect") != "Allow":
            continue
        sid = st.get("Sid", "?")
        for action in as_list(st.get("Action", [])):
            if not isinstance(action, str) or action == "*" or action.endswith(":*"):
                out.append(f"{name}/{sid}: wildcard action {action!r}")
        if "NotAction" in st or "NotResource" in st:
            out.append(f"{name}/{sid}: NotAction/NotResource grants too much")
        for resource in as_list(st.get("Resource", [])):
            text = key(resource)
            if resource == "*":
                out.append(f"{name}/{sid}: resource '*'")
            elif "*" in text and text not in WILDCARD_RESOURCES:
                out.append(f"{name}/{sid}: wildcard resource {text} is not on the list")
            if "OutputBucket.Arn}/" in text and "${Prefix}" not in text:
                out.append(f"{name}/{sid}: S3 object grant {text} outside the prefix")
    return out


def substitution_problems(template, root):
    """The state machine's ${...} placeholders and DefinitionSubstitutions agree."""
    import re
    out = []
    for name, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::StateMachine":
            continue
        props = res.get("Properties", {})
        asl = (root / props["DefinitionUri"]).read_text()
        used = set(re.findall(r"\$\{(\w+)\}", asl))
        given = set(props.get("DefinitionSubstitutions", {}))
        for missing in sorted(used - given):
            out.append(f"{name}: {props['DefinitionUri']} uses ${{{missing}}}, not in DefinitionSubstitutions")
        for extra in sorted(given - used):
            out.append(f"{name}: DefinitionSubstitutions.{extra} is not used by {props['DefinitionUri']}")
        if not used:
            out.append(f"{name}: {props['DefinitionUri']} has no placeholders")
    return out


def self_test(template):
    """The checker must fail on each kind of wide grant."""
    def with_statement(st):
        t = copy.deepcopy(template)
        t["Resources"]["ParseChunkFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(st)
        return t

    wide = [
        {"Sid": "a", "Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::x"},
        {"Sid": "b", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::x"},
        {"Sid": "c", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Sid": "d", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": {"Fn::Sub": "${OutputBucket.Arn}/*"}},
        {"Sid": "e", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": "arn:aws:secretsmanager:*:*:secret:*"},
    ]
    for st in wide:
        found = problems(with_statement(st))
        assert found, f"the checker missed {st}"
    t = copy.deepcopy(template)
    t["Resources"]["ParseChunkFunctionRole"]["Properties"]["ManagedPolicyArns"].append(
        "arn:aws:iam::aws:policy/AmazonS3FullAccess")
    assert problems(t), "the checker missed a managed policy"
    t = copy.deepcopy(template)
    t["Resources"]["ParseChunkFunctionRole"]["Properties"]["ManagedPolicyArns"][1] = {
        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}
    assert problems(t), "the checker missed network interfaces outside a VPC"
    t = copy.deepcopy(template)
    fn = t["Resources"]["ParseChunkFunction"]["Properties"]
    fn.pop("Role")
    fn["Policies"] = [{"Version": "2012-10-17", "Statement": []}]
    assert problems(t), "the checker missed SAM's VPC policy on a function with VpcConfig"
    t = copy.deepcopy(template)
    t["Resources"]["Pipeline"]["Properties"]["Policies"].append({"S3CrudPolicy": {}})
    assert problems(t), "the checker missed an unlisted SAM policy template"
    print(f"self-test: {len(wide) + 4} wide grants caught")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = Path(args[0] if args else Path(__file__).with_name("template.yaml"))
    template, matches = decode(str(path))
    if template is None:
        print(f"{path}: cannot be read: {matches}", file=sys.stderr)
        return 1
    if "--self-test" in sys.argv:
        self_test(template)
    found = problems(template) + substitution_problems(template, path.parent)
    count = sum(1 for _ in statements(template))
    for p in found:
        print(f"{path}: {p}", file=sys.stderr)
    if found:
        return 1
    print(f"{path}: {count} policy statements, no grant wider than needed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
