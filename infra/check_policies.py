#!/usr/bin/env python3
"""Fails on an IAM grant in infra/template.yaml that is wider than it needs to be
(and on a state machine placeholder that DefinitionSubstitutions does not fill).

Every Allow statement the template writes itself (function and state machine
`Policies`, IAM roles and policies) is checked:
- no `*` action and no `service:*` action;
- no `*` resource;
- a resource with a `*` in it must be one of WILDCARD_RESOURCES below, each
  with the reason no narrower ARN exists;
- S3 object grants must name the bucket *and* the prefix parameter;
- SAM policy templates are allowed only from SAM_POLICY_TEMPLATES, which
  scope themselves to one named resource.

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
}
SAM_POLICY_TEMPLATES = {"LambdaInvokePolicy"}


def as_list(v):
    return v if isinstance(v, list) else [v]


def key(v):
    return json.dumps(v, sort_keys=True)


def statements(template):
    """(resource name, statement) for every policy statement in the template."""
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {}) or {}
        kind = res.get("Type", "")
        docs = []
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
            out.append(f"{name}: managed policy {st['ManagedPolicy']} (write the statements out)")
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
        t["Resources"]["ParseChunkFunction"]["Properties"]["Policies"][0]["Statement"].append(st)
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
    t["Resources"]["ParseChunkFunction"]["Properties"]["Policies"].append("AmazonS3FullAccess")
    assert problems(t), "the checker missed a managed policy"
    t = copy.deepcopy(template)
    t["Resources"]["ParseChunkFunction"]["Properties"]["Policies"].append({"S3CrudPolicy": {}})
    assert problems(t), "the checker missed an unlisted SAM policy template"
    print(f"self-test: {len(wide) + 2} wide grants caught")


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
