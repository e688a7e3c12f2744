#!/usr/bin/env python3
"""Fails when infra/ walks a first deploy on Aurora or RDS into a known trap.

Each check reads the templates (and the state machine) as CloudFormation
would see them; `--self-test` breaks the templates one trap at a time and
fails unless the matching check catches it.

1. managed secrets: DatabaseHost/DatabasePort reach the functions (DB_HOST,
   DB_PORT), and the demo database uses an RDS-managed master secret;
2. binlog settings: the demo's cluster parameter group sets binlog_format=ROW,
   binlog_row_image=FULL and binlog_row_metadata=FULL;
4. VPC: init-db waits for the VPC endpoints (and the KMS grant), has a
   ServiceTimeout above its function's timeout, and the interface endpoints
   accept HTTPS from a group the functions carry;
6. lifecycle: the output expiry rule is filtered on the events tag the S3
   store writes (shared/src/store/s3.rs), so meta.json and serverId.json never
   expire; no other rule expires objects outside staging;
7. KMS: a customer-managed key for the secret gets kms:Decrypt through
   Secrets Manager, for every function that reads the secret;
8. retention: BinlogRetentionHours allows Aurora's 2,160 hours;
9. scheduling: ConcurrentRun ends the execution successfully (the alarm counts
   failed executions), never in a Fail state;
12. publication: only CommitCheckpoint writes outside staging;
13. alarms: the alarm topic is under a key CloudWatch may use (never the
   AWS-managed alias/aws/sns);
14. TLS: DatabaseTls defaults to verify;
15. events: PutEvents only with the events:source binlog-cdc writes;
16. secrets: with CreateReplicationUser, list-binlogs and parse-chunk get the
   replication secret, never the admin one.

Run: .venv/infra/bin/python infra/check_deploy.py [--self-test]
"""

import copy
import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent


def load(path):
    template, matches = decode(str(path))
    if template is None:
        sys.exit(f"{path}: cannot be read: {matches}")
    return template


def events_tag():
    """The tag the S3 store puts on event objects, from its source."""
    src = (ROOT / "shared/src/store/s3.rs").read_text()
    m = re.search(r'pub const EVENTS_TAG: &str = "([^"=]+)=([^"]+)";', src)
    return {"Key": m.group(1), "Value": m.group(2)} if m else None


def refs(value):
    """Every resource name a value refers to (Ref, GetAtt, Sub)."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            out |= refs(v)
    elif isinstance(value, list):
        for v in value:
            out |= refs(v)
    return out


def functions(t):
    return {n: r for n, r in t["Resources"].items() if r.get("Type") == "AWS::Serverless::Function"}


def policy_statements(t, name):
    """The statements of a function's policies: its own role's (`Role:
    !GetAtt XRole.Arn`) or, for a role SAM makes, its `Policies`."""
    fn = t["Resources"][name]["Properties"]
    role = fn.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        role_name = role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")[0]
        docs = [p.get("PolicyDocument", {}) for p in t["Resources"][role_name]["Properties"].get("Policies", [])]
    else:
        docs = [p for p in fn.get("Policies", []) if isinstance(p, dict)]
    return [st for doc in docs for st in doc.get("Statement", [])]


def reads_the_secret(t):
    names = set()
    for name in functions(t):
        for st in policy_statements(t, name):
            if "secretsmanager:GetSecretValue" in json.dumps(st.get("Action")):
                names.add(name)
    return names


def check_managed_secret(t, demo):
    out = []
    params = t.get("Parameters", {})
    env = t["Globals"]["Function"]["Environment"]["Variables"]
    for p, var in (("DatabaseHost", "DB_HOST"), ("DatabasePort", "DB_PORT")):
        if p not in params:
            out.append(f"1: no {p} parameter (managed secrets hold no host or port)")
        elif env.get(var) != {"Ref": p}:
            out.append(f"1: {var} is not set from {p}")
    cluster = demo["Resources"].get("Cluster", {}).get("Properties", {})
    if cluster.get("ManageMasterUserPassword") is not True:
        out.append("1: the demo database does not use an RDS-managed master secret")
    if "DatabaseHost" not in demo.get("Outputs", {}):
        out.append("1: the demo database does not output DatabaseHost")
    return out


def check_binlog_parameters(demo):
    groups = [r for r in demo["Resources"].values() if r.get("Type") == "AWS::RDS::DBClusterParameterGroup"]
    want = {"binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}
    if not groups:
        return ["2: the demo database has no cluster parameter group"]
    got = groups[0]["Properties"].get("Parameters", {})
    return [f"2: the demo's parameter group does not set {k}={v}" for k, v in want.items() if str(got.get(k, "")).upper() != v]


def check_vpc(t):
    out = []
    res = t["Resources"]
    init = res.get("InitDb", {})
    deps = init.get("DependsOn", [])
    deps = [deps] if isinstance(deps, str) else deps
    waited = set(deps)
    for d in deps:
        waited |= refs(res.get(d, {}).get("Metadata", {}))
    for name, r in res.items():
        if r.get("Type") == "AWS::EC2::VPCEndpoint" and name not in waited:
            out.append(f"4: InitDb does not wait for {name}")
    if "SecretKeyDecrypt" in res and "SecretKeyDecrypt" not in waited:
        out.append("4: InitDb does not wait for the KMS grant")
    timeout = init.get("Properties", {}).get("ServiceTimeout")
    fn_timeout = functions(t).get("InitDbFunction", {}).get("Properties", {}).get("Timeout", 3)
    if not isinstance(timeout, int) or not fn_timeout < timeout <= 3600:
        out.append(f"4: InitDb's ServiceTimeout {timeout!r} is not above init-db's timeout ({fn_timeout} s) and at most 3600")
    https_from = set()
    for name, r in res.items():
        if r.get("Type") == "AWS::EC2::SecurityGroup":
            for rule in r["Properties"].get("SecurityGroupIngress", []):
                if rule.get("FromPort") <= 443 <= rule.get("ToPort") and "SourceSecurityGroupId" in rule:
                    https_from |= {(name, s) for s in refs(rule["SourceSecurityGroupId"])}
    carried = set()
    for fn in functions(t).values():
        carried |= refs(fn["Properties"].get("VpcConfig", {}))
    for name, r in res.items():
        p = r.get("Properties", {})
        if r.get("Type") == "AWS::EC2::VPCEndpoint" and p.get("VpcEndpointType") == "Interface":
            groups = refs(p.get("SecurityGroupIds", []))
            if not any(g == eg and src in carried for eg, src in https_from for g in groups):
                out.append(f"4: {name}'s security group does not accept HTTPS from a group the functions carry")
    return out


def check_lifecycle(t):
    out = []
    tag = events_tag()
    if tag is None:
        return ["6: EVENTS_TAG not found in shared/src/store/s3.rs"]
    rules = t["Resources"]["OutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if "ExpirationInDays" in r or "ExpirationDate" in r]
    outputs = [r for r in expiring if r.get("Id") == "outputs-expire"]
    if not outputs:
        out.append("6: no outputs-expire rule")
    for r in expiring:
        prefix = json.dumps(r.get("Prefix", ""))
        if "staging/" in prefix:
            continue
        if tag not in r.get("TagFilters", []):
            out.append(f"6: rule {r.get('Id')} expires untagged objects under the prefix (meta.json, serverId.json)")
    return out


def check_kms(t):
    out = []
    res = t["Resources"]
    if "SecretKmsKeyArn" not in t.get("Parameters", {}):
        return ["7: no SecretKmsKeyArn parameter"]
    pol = res.get("SecretKeyDecrypt")
    if not pol:
        return ["7: no kms:Decrypt grant for a customer-managed key"]
    st = pol["Properties"]["PolicyDocument"]["Statement"][0]
    if st.get("Action") != "kms:Decrypt" or st.get("Resource") != {"Ref": "SecretKmsKeyArn"}:
        out.append("7: the grant is not kms:Decrypt on SecretKmsKeyArn")
    if "kms:ViaService" not in json.dumps(st.get("Condition", {})):
        out.append("7: the grant is not limited to Secrets Manager (kms:ViaService)")
    roles = refs(pol["Properties"].get("Roles", []))
    for fn in sorted(reads_the_secret(t)):
        if f"{fn}Role" not in roles:
            out.append(f"7: {fn} reads the secret but gets no kms:Decrypt")
    return out


def check_retention(t):
    p = t["Parameters"].get("BinlogRetentionHours", {})
    return [] if p.get("MaxValue", 0) >= 2160 else ["8: BinlogRetentionHours stops short of Aurora's 2160 hours"]


def check_concurrent_run(asl):
    out = []
    states = asl["States"]
    for name, st in states.items():
        for c in st.get("Catch", []):
            if "ConcurrentRun" in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"]:
                nxt, kind = c["Next"], None
                seen = set()
                while nxt and nxt not in seen:
                    seen.add(nxt)
                    kind = states[nxt]["Type"]
                    if kind in ("Succeed", "Fail"):
                        break
                    nxt = states[nxt].get("Next")
                if kind != "Succeed":
                    out.append(f"9: {name} sends ConcurrentRun to {nxt} ({kind}), which the failure alarm counts")
    return out


def check_publication(t):
    """12: only CommitCheckpoint may write outside staging (it publishes a
    run's objects after meta.json names the run; see functions/commit-checkpoint/src/publish.rs),
    and the dashboard's body is JSON."""
    out = []
    for name in functions(t):
        if name in ("CommitCheckpointFunction", "InitDbFunction"):
            continue
        for st in policy_statements(t, name):
            if st.get("Effect") == "Allow" and "s3:PutObject" in json.dumps(st.get("Action")):
                if "staging/" not in json.dumps(st.get("Resource")):
                    out.append(f"12: {name} may write outside staging: an unpublished run would be readable")
    board = t["Resources"].get("PipelineDashboard")
    if board:
        body = board["Properties"]["DashboardBody"]["Fn::Sub"][0]
        try:
            json.loads(re.sub(r"\$\{[^}]+\}", "1", body))
        except ValueError as e:
            out.append(f"12: the dashboard's body is not JSON: {e}")
    return out


def check_alarm_topic(t):
    """13: CloudWatch alarms can publish to the alarm topic: not under the
    AWS-managed SNS key (its key policy does not let cloudwatch.amazonaws.com
    use it), and the stack's key lets CloudWatch encrypt for it."""
    res = t["Resources"]
    topic = res.get("AlarmTopic", {}).get("Properties", {})
    key = topic.get("KmsMasterKeyId")
    if key is None:
        return []
    if isinstance(key, str):
        return [f"13: the alarm topic is encrypted with {key}, which CloudWatch alarms cannot use"]
    names = refs(key)
    out = []
    for name in names:
        policy = res.get(name, {}).get("Properties", {}).get("KeyPolicy", {})
        allowed = set()
        for st in policy.get("Statement", []):
            if st.get("Effect") == "Allow" and st.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com":
                allowed |= set(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        for action in ("kms:Decrypt", "kms:GenerateDataKey*"):
            if action not in allowed:
                out.append(f"13: {name}'s key policy does not give cloudwatch.amazonaws.com {action}")
    return out


def check_tls_default(t):
    """14: the database connection verifies the server's certificate unless
    told otherwise."""
    default = t["Parameters"].get("DatabaseTls", {}).get("Default")
    return [] if default == "verify" else [f"14: DatabaseTls defaults to {default!r}, not verify"]


def check_event_source(t):
    """15: the role announcing runs may send events only as binlog-cdc (the
    source shared/src/notify.rs writes)."""
    src = (ROOT / "shared/src/notify.rs").read_text()
    m = re.search(r'pub const SOURCE: &str = "([^"]+)";', src)
    source = m.group(1) if m else None
    out = []
    for name in functions(t):
        for st in policy_statements(t, name):
            for s in st["Fn::If"][1:2] if "Fn::If" in st else [st]:
                if "events:PutEvents" not in json.dumps(s.get("Action")):
                    continue
                cond = s.get("Condition", {}).get("StringEquals", {})
                if cond.get("events:source") != source:
                    out.append(f"15: {name} may put events of any source (no events:source {source!r} condition)")
    return out


def check_runtime_secret(t):
    """16: when the stack creates the replication user, the functions that
    run the pipeline never read the admin secret (DatabaseSecretArn)."""
    out = []
    for name in ("ListBinlogsFunction", "ParseChunkFunction"):
        fn = functions(t).get(name, {})
        env = fn.get("Properties", {}).get("Environment", {}).get("Variables", {})
        arn = env.get("DB_SECRET_ARN")
        if not (isinstance(arn, dict) and arn.get("Fn::If", [None])[0] == "MakeReplicationUser"
                and arn["Fn::If"][1] == {"Ref": "ReplicationSecret"}):
            out.append(f"16: {name} reads the admin secret even when the stack creates the replication user")
        for st in policy_statements(t, name):
            if "secretsmanager:GetSecretValue" not in json.dumps(st.get("Action")):
                continue
            res = st.get("Resource", {})
            when_made = res.get("Fn::If", [None, None])[1] if isinstance(res, dict) else res
            if "DatabaseSecretArn" in json.dumps(when_made):
                out.append(f"16: {name} may read the admin secret when the stack creates the replication user")
    return out


def problems(t, demo, asl):
    return (check_managed_secret(t, demo) + check_binlog_parameters(demo) + check_vpc(t)
            + check_lifecycle(t) + check_kms(t) + check_retention(t) + check_concurrent_run(asl)
            + check_publication(t) + check_alarm_topic(t) + check_tls_default(t) + check_event_source(t)
            + check_runtime_secret(t))


def self_test(t, demo, asl):
    def broken(fn, which):
        tt, dd, aa = copy.deepcopy(t), copy.deepcopy(demo), copy.deepcopy(asl)
        fn(tt, dd, aa)
        found = [p for p in problems(tt, dd, aa) if p.startswith(f"{which}:")]
        assert found, f"the checker missed trap {which}"

    breaks = [
        ("1", lambda t, d, a: t["Globals"]["Function"]["Environment"]["Variables"].pop("DB_HOST")),
        ("1", lambda t, d, a: d["Resources"]["Cluster"]["Properties"].pop("ManageMasterUserPassword")),
        ("2", lambda t, d, a: d["Resources"]["ClusterParameters"]["Properties"]["Parameters"].pop("binlog_row_metadata")),
        ("4", lambda t, d, a: t["Resources"]["InitDb"].pop("DependsOn")),
        ("4", lambda t, d, a: t["Resources"]["InitDb"]["Properties"].pop("ServiceTimeout")),
        ("4", lambda t, d, a: t["Resources"]["SecretsManagerEndpoint"]["Properties"].update(SecurityGroupIds={"Ref": "SecurityGroupIds"})),
        ("6", lambda t, d, a: [r.pop("TagFilters", None) for r in t["Resources"]["OutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]]),
        ("7", lambda t, d, a: t["Resources"]["SecretKeyDecrypt"]["Properties"]["Roles"].pop()),
        ("8", lambda t, d, a: t["Parameters"]["BinlogRetentionHours"].update(MaxValue=168)),
        ("9", lambda t, d, a: [c.update(Next="Failed") for st in a["States"].values() for c in st.get("Catch", []) if "ConcurrentRun" in c["ErrorEquals"]]),
        ("12", lambda t, d, a: t["Resources"]["FanOutByTableFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0].update(
            Resource={"Fn::Sub": "${OutputBucket.Arn}/${Prefix}*"})),
        ("12", lambda t, d, a: t["Resources"]["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"].__setitem__(0, "{widgets")),
        ("13", lambda t, d, a: t["Resources"]["AlarmTopic"]["Properties"].update(KmsMasterKeyId="alias/aws/sns")),
        ("13", lambda t, d, a: t["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"].pop()),
        ("14", lambda t, d, a: t["Parameters"]["DatabaseTls"].update(Default="require")),
        ("15", lambda t, d, a: [st["Fn::If"][1].pop("Condition") for st in
                                t["Resources"]["CommitCheckpointFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                                if "Fn::If" in st and st["Fn::If"][1].get("Sid") == "AnnounceRunCommitted"]),
        ("16", lambda t, d, a: t["Resources"]["ParseChunkFunction"]["Properties"]["Environment"]["Variables"].update(
            DB_SECRET_ARN={"Ref": "DatabaseSecretArn"})),
    ]
    for which, fn in breaks:
        broken(fn, which)
    print(f"self-test: {len(breaks)} broken templates caught")


def main():
    t = load(ROOT / "infra/template.yaml")
    demo = load(ROOT / "infra/demo-database.yaml")
    asl = json.loads((ROOT / "statemachine/binlog-pipeline.asl.json").read_text())
    if "--self-test" in sys.argv:
        self_test(t, demo, asl)
    found = problems(t, demo, asl)
    for p in found:
        print(f"deploy trap {p}", file=sys.stderr)
    if found:
        return 1
    print("infra: no known deploy trap (managed secrets, binlog parameters, VPC, lifecycle, KMS, retention, ConcurrentRun, publication, "
          "alarm topic key, TLS default, event source, runtime secret)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
