#!/usr/bin/env python3
"""IAM as the stack deploys it, on a moto server that enforces it.

moto started with INITIAL_NO_AUTH_ACTION_COUNT checks every request against
the caller's policies once that many requests went unchecked. This script:

  bootstrap ENDPOINT
      spends the unchecked requests on an administrator (user, policy, key)
      for the test's own setup and checks; prints its credentials as JSON.
  roles ENDPOINT ADMIN_JSON TEMPLATE PARAMETERS_JSON RESOURCES_JSON
      renders each function's policies from the template (its role's inline
      Policies, intrinsics resolved for these parameters and resources; its
      managed policies grant only CloudWatch Logs and, in a VPC, network
      interfaces, which no call here makes), makes one role per function
      with them, assumes it, and prints per function binary:
      {"credentials": {...}, "policy": {...}}.
  user ENDPOINT ADMIN_JSON NAME POLICY_JSON
      an IAM user with only that policy (an operator's); its credentials.
  used ROLES_FILE RECORD
      per function: the actions its policy grants, those the calls recorded
      under its credentials needed (tests/e2e/s3-fault-proxy.py RECORD), the
      granted ones no call needed, the lists its s3:prefix conditions
      refuse, and the secrets and Glue tables it may not touch (which moto
      lets through).

moto checks S3 calls against bucket and key, other services' calls by action
only (see as_moto_checks: a GetSecretValue grant on one secret reads any); it
evaluates no conditions (a ListBucket grant conditioned on s3:prefix allows
any prefix there) and answers 404 for a missing key whoever asks. The e2e
test checks those on the recorded calls (`used`: each list's prefix and each
Secrets Manager call's secret against the function's policy; and its check
that no read was answered 404).
Runs under .venv/infra's Python (cfn-lint reads the template's short forms;
boto3 comes with the SAM CLI).
"""

import fnmatch
import json
import re
import sys
import urllib.parse

import boto3
from cfnlint.decode import decode

ACCOUNT = "123456789012"
REGION = "us-east-1"
ADMIN = "binlog-cdc-test-admin"
NO_VALUE = object()


def client(service, endpoint, creds=None):
    creds = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
    )


def bootstrap(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName=ADMIN)
    iam.put_user_policy(
        UserName=ADMIN,
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


class Resolver:
    """CloudFormation intrinsics, for the values a policy can hold."""

    def __init__(self, template, params, resources):
        self.params = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
        self.params.update(params)
        self.params.update(
            {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}
        )
        self.resources = resources
        self.conditions = template.get("Conditions", {})
        self.decided = {}

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        if name in self.resources:
            return self.resources[name]["Ref"]
        raise KeyError(f"Ref {name}: not a parameter, and no value given for the resource")

    def get_att(self, name, attr):
        try:
            return self.resources[name][attr]
        except KeyError:
            raise KeyError(f"GetAtt {name}.{attr}: no value given") from None

    def condition(self, name):
        if name not in self.decided:
            self.decided[name] = bool(self.value(self.conditions[name]))
        return self.decided[name]

    def sub(self, text, extra):
        def one(m):
            name = m.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def value(self, v):
        if isinstance(v, list):
            return [x for x in (self.value(x) for x in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, a), = v.items()
            if k == "Ref":
                return self.ref(a)
            if k == "Fn::GetAtt":
                name, attr = a if isinstance(a, list) else a.split(".", 1)
                return self.get_att(name, attr)
            if k == "Fn::Sub":
                text, extra = (a, {}) if isinstance(a, str) else (a[0], self.value(a[1]))
                return self.sub(text, extra)
            if k == "Fn::If":
                return self.value(a[1] if self.condition(a[0]) else a[2])
            if k == "Fn::Equals":
                x, y = self.value(a)
                return str(x) == str(y)
            if k == "Fn::Not":
                return not self.value(a[0])
            if k == "Fn::And":
                return all(self.value(x) for x in a)
            if k == "Fn::Or":
                return any(self.value(x) for x in a)
            if k == "Condition":
                return self.condition(a)
            if k == "Fn::Join":
                sep, items = a
                return sep.join(str(x) for x in self.value(items))
            if k == "Fn::Split":
                sep, text = a
                return str(self.value(text)).split(sep)
        return {k: x for k, x in ((k, self.value(x)) for k, x in v.items()) if x is not NO_VALUE}


def function_policies(template, resolver):
    """{binary: policy document} for every function of the template."""
    out = {}
    for name, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        if "Condition" in res and not resolver.condition(res["Condition"]):
            continue
        binary = res["Metadata"]["BuildProperties"]["Binary"]
        role = res["Properties"]["Role"]["Fn::GetAtt"]
        role = role[0] if isinstance(role, list) else role.split(".")[0]
        statements = []
        for pol in template["Resources"][role]["Properties"].get("Policies", []):
            statements += resolver.value(pol["PolicyDocument"]["Statement"])
        out[binary] = {"Version": "2012-10-17", "Statement": statements}
    return out


def as_moto_checks(policy):
    """The policy as moto can check it. moto checks S3 calls against their
    bucket and key, but every other service's call against the resource
    "*" (it has no resource for them): statements of those services are
    installed with `Resource: "*"`, so their actions are still checked,
    their resources not (infra/check_policies.py keeps those to the stack's
    own ARNs)."""
    out = []
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if not all(a.startswith("s3:") for a in actions):
            out.append({**st, "Resource": "*"})
            continue
        out.append(st)
        # A DeleteObjects request: AWS checks s3:DeleteObject on each key;
        # moto checks it on the bucket first, then on each key. The bucket
        # gets that one action, so moto's per-key check is the one that counts.
        if st.get("Effect") == "Allow" and "s3:DeleteObject" in actions:
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            buckets = sorted({r.split("/", 1)[0] for r in resources})
            out.append({"Sid": "MotoChecksDeleteObjectsOnTheBucket", "Effect": "Allow",
                        "Action": "s3:DeleteObject", "Resource": buckets})
    return {**policy, "Statement": out}


def roles(endpoint, admin, template_path, params, resources):
    template, matches = decode(template_path)
    if template is None:
        raise SystemExit(f"{template_path}: {matches}")
    policies = function_policies(template, Resolver(template, params, resources))
    iam, sts = client("iam", endpoint, admin), client("sts", endpoint, admin)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{ADMIN}"}, "Action": "sts:AssumeRole"}],
    }
    out = {}
    for binary, policy in policies.items():
        role = f"binlog-cdc-{binary}"
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=role, PolicyName="template", PolicyDocument=json.dumps(as_moto_checks(policy)))
        creds = sts.assume_role(RoleArn=arn, RoleSessionName=binary, DurationSeconds=43200)["Credentials"]
        out[binary] = {
            "credentials": {k: creds[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")},
            "policy": policy,
        }
    return out


# JSON services' X-Amz-Target prefixes, and the IAM service each names.
TARGETS = {"secretsmanager": "secretsmanager", "AWSStepFunctions": "states", "AWSEvents": "events",
           "AWSGlue": "glue"}


def actions_of(request):
    """The IAM actions one recorded request needs (S3 path-style)."""
    if request["target"]:
        service, operation = request["target"].split(".", 1)
        return [f"{TARGETS.get(service, service)}:{operation}"]
    path, _, query = request["path"].partition("?")
    params = {q.split("=", 1)[0] for q in query.split("&") if q}
    has_key = "/" in path.strip("/")
    method = request["method"]
    if not has_key:
        if method == "POST" and "delete" in params:
            return ["s3:DeleteObject"]
        return ["s3:ListBucket"] if method == "GET" else [f"s3:bucket-{method}"]
    if method in ("GET", "HEAD"):
        return ["s3:GetObject"]
    if method == "DELETE":
        return ["s3:AbortMultipartUpload"] if "uploadId" in params else ["s3:DeleteObject"]
    if method == "PUT" and "tagging" in params:
        return ["s3:PutObjectTagging"]
    # PutObject, CopyObject, UploadPart(Copy), Create/CompleteMultipartUpload.
    out = ["s3:PutObject"]
    if request["copy"]:
        out.append("s3:GetObject")
    if request["tagging"]:
        out.append("s3:PutObjectTagging")
    return out


def list_prefix_allowed(policy, prefix):
    """Whether a ListBucket of `prefix` passes the policy's `s3:prefix`
    conditions (moto does not evaluate conditions)."""
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if st.get("Effect") != "Allow" or "s3:ListBucket" not in actions:
            continue
        cond = st.get("Condition")
        if not cond:
            return True
        if cond.get("StringEquals", {}).get("s3:prefix") == prefix:
            return True
        like = cond.get("StringLike", {}).get("s3:prefix")
        if like is not None and fnmatch.fnmatchcase(prefix, like):
            return True
    return False


def resource_allowed(policy, action, arn):
    """Whether the policy allows `action` on `arn` (a secret's, a Glue
    table's: moto checks those services' calls by action only)."""
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        if st.get("Effect") != "Allow" or action not in actions:
            continue
        if any(fnmatch.fnmatchcase(arn, r) for r in resources):
            return True
    return False


def glue_allowed(policy, action, database, table):
    """Whether the policy allows `action` on the Glue table `database.table`:
    Glue checks the catalog, the database and the table (moto checks Glue
    calls by action only)."""
    arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
    needed = [f"{arn}catalog", f"{arn}database/{database}", f"{arn}table/{database}/{table}"]
    return all(resource_allowed(policy, action, resource) for resource in needed)


def used(roles_json, record):
    """Per function: the actions its policy grants, those its calls needed
    (each recorded request, by the access key of the function's role), the
    granted ones no call needed, and the lists its `s3:prefix` conditions
    refuse."""
    roles = json.loads(open(roles_json).read())
    by_key = {r["credentials"]["AccessKeyId"]: f for f, r in roles.items()}
    needed = {f: set() for f in roles}
    refused = {f: [] for f in roles}
    for line in open(record):
        request = json.loads(line)
        function = by_key.get(request["key"])
        if not function:
            continue
        needed[function].update(actions_of(request))
        if actions_of(request) == ["s3:ListBucket"]:
            query = urllib.parse.parse_qs(request["path"].partition("?")[2])
            prefix = query.get("prefix", [""])[0]
            if not list_prefix_allowed(roles[function]["policy"], prefix):
                refused[function].append(f"s3:ListBucket prefix {prefix!r}")
        secret = request.get("secret")
        if secret:
            action = actions_of(request)[0]
            if not resource_allowed(roles[function]["policy"], action, secret):
                refused[function].append(f"{action} {secret!r}")
        glue = request.get("glue")
        if glue:
            action = actions_of(request)[0]
            if not glue_allowed(roles[function]["policy"], action, glue["database"], glue["table"]):
                refused[function].append(f"{action} {glue['database']}.{glue['table']}")
    out = {}
    for function, role in roles.items():
        granted = set()
        for st in role["policy"]["Statement"]:
            if st.get("Effect") == "Allow":
                granted.update(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        out[function] = {
            "granted": sorted(granted),
            "needed": sorted(needed[function]),
            "unused": sorted(granted - needed[function]),
            "refused": sorted(set(refused[function])),
        }
    return out


def user(endpoint, admin, name, policy):
    """An IAM user with only `policy`; its credentials."""
    iam = client("iam", endpoint, admin)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def main():
    mode, endpoint = sys.argv[1], sys.argv[2]
    if mode == "bootstrap":
        print(json.dumps(bootstrap(endpoint)))
    elif mode == "roles":
        admin, template, params, resources = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
        print(json.dumps(roles(endpoint, json.loads(admin), template, json.loads(params), json.loads(resources))))
    elif mode == "user":
        admin, name, policy = json.loads(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
        print(json.dumps(user(endpoint, admin, name, policy)))
    elif mode == "used":
        print(json.dumps(used(sys.argv[2], sys.argv[3])))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
