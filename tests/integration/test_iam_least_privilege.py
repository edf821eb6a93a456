"""Least privilege, checked on the SAM-translated template (what CloudFormation would create).

Every role (each function's, the state machine's, the Glue job's, the schedules') is reduced to its
(action, resource) grants with intrinsics rendered as text (``${RawBucket.Arn}/ohlcv/raw/*``), then:

- no ``*`` / ``service:*`` action and no ``Resource: "*"`` unless the action only exists unscoped
  (``STAR_ONLY``, an explicit list with the reason for each family);
- only the AWS managed policies listed in ``MANAGED`` are attached;
- each role's grants are exactly ``EXPECTED`` — written down from what its code calls (see the comments
  there: the handler in functions/<name>/app.py and the pricefeed modules it uses), so anything broader
  (or a permission silently dropped) fails here;
- the rules that matter most are spelled out on their own: who may write the token secret, who may read
  the app config, which S3 prefixes each writer is confined to, which state-table keys each may touch.

tests/e2e/test_no_secrets_leak.py checks the other direction on a running stack: every AWS call the
handlers make during a whole run is allowed by these policies.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict

import pytest

from pricefeed.auth import callback as oauth
from pricefeed.auth import daily_login
from pricefeed.auth import refresh_lease as session
from pricefeed.fyers.ratelimit import AccountRateLimiter
from pricefeed.fyers.symbol_master import MASTER_ROOT
from pricefeed.ingest import watermark

# Actions IAM only grants on Resource "*" (no resource-level permissions exist for them).
STAR_ONLY = {
    # Powertools Metrics / Glue --enable-metrics; CloudWatch metrics have no ARN.
    "cloudwatch:putmetricdata",
    # X-Ray tracing (Tracing: Active on functions and the state machine), via AWSXrayWriteOnlyAccess.
    "xray:puttracesegments",
    "xray:puttelemetryrecords",
    "xray:getsamplingrules",
    "xray:getsamplingtargets",
    "xray:getsamplingstatisticsummaries",
    # Step Functions logging to a CloudWatch Logs group goes through the vended-log delivery API,
    # which AWS documents as Resource "*" only.
    "logs:createlogdelivery",
    "logs:getlogdelivery",
    "logs:updatelogdelivery",
    "logs:deletelogdelivery",
    "logs:listlogdeliveries",
    "logs:putresourcepolicy",
    "logs:describeresourcepolicies",
    "logs:describeloggroups",
    # Resuming a run that waits in a .waitForTaskToken state: the task tokens of service-integration Task states
    # belong to no resource IAM can name (only activities have ARNs).
    "states:sendtasksuccess",
}

LAMBDA_MANAGED = {
    # SAM attaches it to every function role: logs:CreateLogGroup/CreateLogStream/PutLogEvents (each
    # function's own /aws/lambda/<name> group is created by the template, with a retention).
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    # Tracing: Active. X-Ray's write actions are STAR_ONLY.
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
MANAGED = {
    "OAuthFunctionRole": LAMBDA_MANAGED,
    "PlanRunFunctionRole": LAMBDA_MANAGED,
    "IngestSymbolFunctionRole": LAMBDA_MANAGED,
    "RefreshTokensFunctionRole": LAMBDA_MANAGED,
    "LoginGateFunctionRole": LAMBDA_MANAGED,
    "RecordFailureFunctionRole": LAMBDA_MANAGED,
    "RepairPartitionsFunctionRole": LAMBDA_MANAGED,
    "IngestPipelineRole": {"arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"},
    # AWS's documented base policy for a Glue job: its own logs and metrics, Glue's aws-glue-* asset and
    # temp buckets. Broader than this job needs (ec2/iam describe calls for VPC jobs), but replacing it
    # would mean re-deriving what the Glue runtime itself calls, which cannot be checked offline.
    "GlueJobRole": {"arn:${AWS::Partition}:iam::aws:policy/service-role/AWSGlueServiceRole"},
}

RAW = "${RawBucket.Arn}"
PROCESSED = "${ProcessedBucket.Arn}"
TOKEN = "${TokenSecret}"
APP_CONFIG = "${AppConfigSecret}"
TABLE = "${StateTable.Arn}"
GLUE = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
STATES = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
LAMBDA = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function"

#: role → action → resources, from the calls each role's code makes.
EXPECTED: dict[str, dict[str, set[str]]] = {
    # functions/oauth/app.py: load_app_config (GetSecretValue app config); oauth.complete_login →
    # consume_state (PutItem oauth-state#<nonce>) → TokenStore.save (PutSecretValue; never a read); then
    # daily_login.resume_waiting (GetItem/UpdateItem login-waiters#, SendTaskSuccess to each waiting run).
    "OAuthFunctionRole": {
        "secretsmanager:getsecretvalue": {APP_CONFIG},
        "secretsmanager:putsecretvalue": {TOKEN},
        "dynamodb:putitem": {TABLE},
        "dynamodb:getitem": {TABLE},
        "dynamodb:updateitem": {TABLE},
        "states:sendtasksuccess": {"*"},
    },
    # functions/plan_run/app.py → plan.plan_run: GetObject of the ticker list (TickerListKey or the run's
    # tickers_key under config/), symbols.load_master (GetObject/PutObject/List of ohlcv/symbol-master/),
    # PutObject items.json/symbols.json under ohlcv/runs/<run>/, dead letters of unknown symbols
    # (deadletter.record_failure: ohlcv/errors/ and the run's failed/ marker under ohlcv/runs/).
    "PlanRunFunctionRole": {
        "s3:getobject": {RAW + "/${TickerListKey}", RAW + "/config/*", RAW + "/" + MASTER_ROOT + "*"},
        "s3:listbucket": {RAW},
        "s3:putobject": {RAW + "/ohlcv/runs/*", RAW + "/" + MASTER_ROOT + "*", RAW + "/ohlcv/errors/*"},
    },
    # functions/ingest_symbol/app.py: load_app_config + session.TokenKeeper (GetSecretValue both secrets,
    # PutSecretValue + UpdateSecretVersionStage to store a refresh unless a login won, Get/PutItem of the
    # refresh lease), ratelimit
    # (Get/PutItem budget#, UpdateItem budget# for a busy budget's next slot), watermark (Get/PutItem
    # watermark#), ingest (PutObject ohlcv/raw/, the run's ingested/ manifest and the pending marker of the days
    # to build; the run's paused/ marker of a symbol waiting for a login).
    "IngestSymbolFunctionRole": {
        "secretsmanager:getsecretvalue": {APP_CONFIG, TOKEN},
        "secretsmanager:putsecretvalue": {TOKEN},
        "secretsmanager:updatesecretversionstage": {TOKEN},
        "s3:putobject": {
            RAW + "/ohlcv/raw/*", RAW + "/ohlcv/runs/*/ingested/*", RAW + "/ohlcv/runs/*/paused/*",
            RAW + "/ohlcv/pending/*",
        },
        "dynamodb:getitem": {TABLE},
        "dynamodb:putitem": {TABLE},
        "dynamodb:updateitem": {TABLE},
    },
    # functions/refresh_tokens/app.py → renewal.scheduled_refresh: TokenKeeper as above, SNS Publish (the
    # RefreshTokenDaysLeft warning, or the login link: daily_login.LoginGate.notify, PutItem login-notice#).
    "RefreshTokensFunctionRole": {
        "secretsmanager:getsecretvalue": {APP_CONFIG, TOKEN},
        "secretsmanager:putsecretvalue": {TOKEN},
        "secretsmanager:updatesecretversionstage": {TOKEN},
        "dynamodb:getitem": {TABLE},
        "dynamodb:putitem": {TABLE},
        "sns:publish": {"arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${TokenAlertTopic.TopicName}"},
        # Lambda (as this role) puts a schedule's event that failed every attempt in the function's dead-letter queue
        "sqs:sendmessage": {"${LoginCheckDeadLetterQueue.Arn}"},
    },
    # functions/login_gate/app.py → daily_login.LoginGate: TokenKeeper as above (check), SNS Publish and PutItem
    # login-notice# (the notice), Get/UpdateItem login-waiters# and SendTaskSuccess (wait); paused.resume_paused
    # (List/Get/Delete the run's paused/ markers, Get/Put the next round's items under ohlcv/runs/<run>/).
    "LoginGateFunctionRole": {
        "secretsmanager:getsecretvalue": {APP_CONFIG, TOKEN},
        "secretsmanager:putsecretvalue": {TOKEN},
        "secretsmanager:updatesecretversionstage": {TOKEN},
        "dynamodb:getitem": {TABLE},
        "dynamodb:putitem": {TABLE},
        "dynamodb:updateitem": {TABLE},
        "sns:publish": {"arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${TokenAlertTopic.TopicName}"},
        "states:sendtasksuccess": {"*"},
        "s3:getobject": {RAW + "/ohlcv/runs/*"},
        "s3:putobject": {RAW + "/ohlcv/runs/*"},
        "s3:deleteobject": {RAW + "/ohlcv/runs/*"},
        "s3:listbucket": {RAW},
    },
    # functions/record_failure/app.py → deadletter.record_failure: the letter and the run's failed/ marker.
    "RecordFailureFunctionRole": {
        "s3:putobject": {RAW + "/ohlcv/errors/*", RAW + "/ohlcv/runs/*/failed/*"},
    },
    # functions/repair_partitions/app.py: catalog.read_job_result (GetObject ohlcv/runs/<run>/aggregate-result.json,
    # NoSuchKey handled), catalog.register_job_partitions (GetTable, BatchGet/Create/UpdatePartition).
    "RepairPartitionsFunctionRole": {
        "s3:getobject": {RAW + "/ohlcv/runs/*"},
        "s3:listbucket": {RAW},
        **{
            action: {
                f"{GLUE}:catalog",
                f"{GLUE}:database/${{BarsDatabase}}",
                f"{GLUE}:table/${{BarsDatabase}}/${{BarsTable}}",
                f"{GLUE}:table/${{BarsDatabase}}/${{CoverageTable}}",
                f"{GLUE}:table/${{BarsDatabase}}/${{BarsMonthlyTable}}",
                f"{GLUE}:table/${{BarsDatabase}}/${{CoverageMonthlyTable}}",
            }
            for action in ("glue:gettable", "glue:batchcreatepartition", "glue:batchgetpartition",
                           "glue:batchupdatepartition")
        },
    },
    # statemachine/ingest_pipeline.asl.json: lambda:invoke of the five functions (.waitForTaskToken for one), the
    # Distributed Map's ItemReader (s3:getObject of items.json), glue:startJobRun.sync, child executions, logging.
    "IngestPipelineRole": {
        "lambda:invokefunction": {
            f"{LAMBDA}:${{{fn}}}*"
            for fn in ("PlanRunFunction", "LoginGateFunction", "IngestSymbolFunction", "RecordFailureFunction",
                       "RepairPartitionsFunction")
        },
        "s3:getobject": {RAW + "/ohlcv/runs/*"},  # the Map's ItemReader
        "s3:putobject": {RAW + "/ohlcv/runs/*/map-results/*"},  # its ResultWriter
        **{
            action: {f"{GLUE}:job/${{AggregateJob}}"}
            for action in ("glue:startjobrun", "glue:getjobrun", "glue:getjobruns", "glue:batchstopjobrun")
        },
        "states:startexecution": {f"{STATES}:stateMachine:pricefeed-${{AWS::StackName}}"},
        "states:describeexecution": {f"{STATES}:execution:pricefeed-${{AWS::StackName}}/*"},
        "states:stopexecution": {f"{STATES}:execution:pricefeed-${{AWS::StackName}}/*"},
        **{
            action: {"*"}
            for action in STAR_ONLY
            if action.startswith("logs:")
        },
    },
    # glue/aggregate_bars.py → aggregate_job / lake: reads raw answers and the run's manifests, the library
    # zip (--extra-py-files), the cached symbol masters (each instrument's sessions: fyers.master_sessions),
    # writes aggregate-result.json, rewrites processed/ (deletes stale files).
    "GlueJobRole": {
        "s3:getobject": {
            RAW + "/ohlcv/raw/*", RAW + "/ohlcv/runs/*", RAW + "/ohlcv/pending/*", RAW + "/_artifacts/*",
            RAW + "/" + MASTER_ROOT + "*",
            PROCESSED + "/processed/*", PROCESSED + "/coverage/*", PROCESSED + "/bars_monthly/*",
            PROCESSED + "/coverage_monthly/*", PROCESSED + "/quarantine/*",
        },
        "s3:putobject": {
            RAW + "/ohlcv/runs/*", RAW + "/ohlcv/pending/*",
            PROCESSED + "/processed/*", PROCESSED + "/coverage/*", PROCESSED + "/bars_monthly/*",
            PROCESSED + "/coverage_monthly/*", PROCESSED + "/quarantine/*",
        },
        "s3:deleteobject": {
            RAW + "/ohlcv/pending/*", PROCESSED + "/processed/*", PROCESSED + "/coverage/*",
            PROCESSED + "/quarantine/*",
        },
        "s3:listbucket": {RAW, PROCESSED},
    },
    # Scheduler's roles: start their target, and put a start that failed every retry in the schedules' queue
    "RefreshTokensFunctionBeforeMarketOpenRole": {
        "lambda:invokefunction": {"${RefreshTokensFunction.Arn}"},
        "sqs:sendmessage": {"${ScheduleDeadLetterQueue.Arn}"},
    },
    "RefreshTokensFunctionBeforeTheDailyRunRole": {
        "lambda:invokefunction": {"${RefreshTokensFunction.Arn}"},
        "sqs:sendmessage": {"${ScheduleDeadLetterQueue.Arn}"},
    },
    "IngestPipelineDailyAfterCloseRole": {
        "states:startexecution": {"${IngestPipeline}"},
        "sqs:sendmessage": {"${ScheduleDeadLetterQueue.Arn}"},
    },
}

FUNCTION_ROLES = [r for r in EXPECTED if r.endswith("FunctionRole")]


# ------------------------------------------------------------------------------------------ rendering


def render(value) -> str:
    """An IAM resource (string or intrinsic) as text: Ref X → ${X}, GetAtt X.A → ${X.A}, Sub expanded."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return "${" + arg + "}"
        if fn == "Fn::GetAtt":
            return "${" + ".".join(arg if isinstance(arg, list) else arg.split(".", 1)) + "}"
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            for name, inner in variables.items():
                text = text.replace("${" + name + "}", render(inner))
            # SAM's policy templates spell a bucket's ARN out; the template uses GetAtt.
            for bucket in ("RawBucket", "ProcessedBucket"):
                text = text.replace(f"arn:${{AWS::Partition}}:s3:::${{{bucket}}}", f"${{{bucket}.Arn}}")
            return text
    raise AssertionError(f"cannot render IAM resource {value!r}")


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def statements(role: dict) -> list[dict]:
    return [st for p in role["Properties"].get("Policies", []) for st in as_list(p["PolicyDocument"]["Statement"])]


def grants(role: dict) -> dict[str, set[str]]:
    """action (lower case) → rendered resources, over the role's Allow statements."""
    found: dict[str, set[str]] = defaultdict(set)
    for st in statements(role):
        if st.get("Effect") != "Allow":
            continue
        for action in as_list(st.get("Action", [])):
            found[action.lower()].update(render(r) for r in as_list(st.get("Resource", [])))
    return dict(found)


def roles(cfn: dict) -> dict[str, dict]:
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == "AWS::IAM::Role"}


def violations(cfn: dict) -> list[str]:
    """Wildcard actions, NotAction/NotResource, and Resource "*" on actions that can be scoped."""
    found = []
    for name, role in roles(cfn).items():
        for st in statements(role):
            if st.get("Effect") != "Allow":
                continue
            for key in ("NotAction", "NotResource"):
                if key in st:
                    found.append(f"{name}: Allow with {key}")
            actions = [a.lower() for a in as_list(st.get("Action", []))]
            for action in actions:
                if action == "*" or action.endswith(":*") or "*" in action.split(":", 1)[-1]:
                    found.append(f"{name}: Allow {action}")
            resources = [render(r) for r in as_list(st.get("Resource", []))]
            if "*" in resources:
                found += [f"{name}: {a} on Resource *" for a in actions if a not in STAR_ONLY]
    return found


# ------------------------------------------------------------------------------------------ tests


def test_every_role_is_known_and_none_is_missing(translated):
    assert set(roles(translated)) == set(EXPECTED)


def test_no_role_allows_a_wildcard_action_or_an_unscoped_resource(translated):
    assert violations(translated) == []


def test_the_wildcard_checker_catches_what_it_is_for(translated):
    broken = copy.deepcopy(translated)
    policies = broken["Resources"]["PlanRunFunctionRole"]["Properties"]["Policies"]
    policies.append({"PolicyName": "x", "PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["secretsmanager:Get*"], "Resource": {"Ref": "TokenSecret"}},
        {"Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*"},  # allowed: STAR_ONLY
        {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},  # a Deny grants nothing
    ]}})
    assert violations(broken) == [
        "PlanRunFunctionRole: Allow s3:*",
        "PlanRunFunctionRole: s3:* on Resource *",
        "PlanRunFunctionRole: Allow secretsmanager:get*",
        "PlanRunFunctionRole: Allow with NotAction",
    ]


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_each_role_grants_exactly_what_its_code_calls(translated, role):
    got = grants(roles(translated)[role])
    wanted = EXPECTED[role]
    extra = {a: sorted(r - wanted.get(a, set())) for a, r in got.items() if r - wanted.get(a, set())}
    missing = {a: sorted(r - got.get(a, set())) for a, r in wanted.items() if r - got.get(a, set())}
    assert not extra, f"{role} grants more than its code needs: {json.dumps(extra, indent=1)}"
    assert not missing, f"{role} lacks what its code calls: {json.dumps(missing, indent=1)}"


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_only_the_expected_managed_policies_are_attached(translated, role):
    attached = {render(arn) for arn in roles(translated)[role]["Properties"].get("ManagedPolicyArns", [])}
    assert attached == MANAGED.get(role, set())


def _who_may(translated, action: str, resource: str) -> set[str]:
    return {name for name, role in roles(translated).items() if resource in grants(role).get(action, set())}


def test_only_the_login_and_the_token_refreshing_functions_can_write_the_token_secret(translated):
    # Ingest refreshes an access token Fyers refused mid-run (one worker, under the lease): a refresher too.
    writers = _who_may(translated, "secretsmanager:putsecretvalue", TOKEN)
    assert writers == {"OAuthFunctionRole", "RefreshTokensFunctionRole", "IngestSymbolFunctionRole",
                       "LoginGateFunctionRole"}
    others = [role for name, role in roles(translated).items() if name not in writers]
    assert all("secretsmanager:putsecretvalue" not in grants(role) for role in others)


def test_the_login_function_writes_tokens_but_cannot_read_them(translated):
    oauth_grants = grants(roles(translated)["OAuthFunctionRole"])
    assert TOKEN not in oauth_grants.get("secretsmanager:getsecretvalue", set())


def test_only_functions_that_call_fyers_can_read_the_app_config_or_the_tokens(translated):
    callers = {
        "OAuthFunctionRole", "RefreshTokensFunctionRole", "IngestSymbolFunctionRole", "LoginGateFunctionRole"
    }
    assert _who_may(translated, "secretsmanager:getsecretvalue", APP_CONFIG) == callers
    assert _who_may(translated, "secretsmanager:getsecretvalue", TOKEN) == callers - {"OAuthFunctionRole"}
    no_secrets = set(FUNCTION_ROLES) - callers
    for name in no_secrets | {"IngestPipelineRole", "GlueJobRole"}:
        assert not any(a.startswith("secretsmanager:") for a in grants(roles(translated)[name])), name


def test_writers_to_s3_are_confined_to_their_prefixes(translated):
    writes = {
        name: grants(role).get("s3:putobject", set()) | grants(role).get("s3:deleteobject", set())
        for name, role in roles(translated).items()
    }
    # Nobody writes a whole bucket.
    assert not any(r.endswith((".Arn}/*", ".Arn}")) for rs in writes.values() for r in rs), writes
    # Raw answers are written by the ingest only; processed data by the Glue job only.
    assert {n for n, rs in writes.items() if any(r.startswith(RAW + "/ohlcv/raw/") for r in rs)} == {
        "IngestSymbolFunctionRole"
    }
    assert {n for n, rs in writes.items() if any(r.startswith(PROCESSED) for r in rs)} == {"GlueJobRole"}
    assert writes["IngestSymbolFunctionRole"] == {
        RAW + "/ohlcv/raw/*", RAW + "/ohlcv/runs/*/ingested/*", RAW + "/ohlcv/runs/*/paused/*",
        RAW + "/ohlcv/pending/*",
    }
    assert writes["LoginGateFunctionRole"] == {RAW + "/ohlcv/runs/*"}  # the paused markers and the next items
    assert writes["RecordFailureFunctionRole"] <= {RAW + "/ohlcv/errors/*", RAW + "/ohlcv/runs/*/failed/*"}
    assert writes["IngestPipelineRole"] == {RAW + "/ohlcv/runs/*/map-results/*"}  # the Map's ResultWriter only
    readers_only = ["OAuthFunctionRole", "RefreshTokensFunctionRole", "RepairPartitionsFunctionRole"]
    for name in readers_only:
        assert writes[name] == set(), name


def test_state_table_access_is_limited_to_the_key_prefixes_each_function_uses(translated):
    budget = AccountRateLimiter(None, "t", "APP-100", per_second=1, per_minute=1, per_day=1).key.split("#")[0] + "#"
    waiters, notices = daily_login.WAITERS_PREFIX + "*", daily_login.NOTICE_PREFIX + "*"
    wanted = {
        "OAuthFunctionRole": {oauth.STATE_PK_PREFIX + "*", waiters},
        "RefreshTokensFunctionRole": {session.LOCK_PREFIX + "*", notices},
        "LoginGateFunctionRole": {session.LOCK_PREFIX + "*", notices, waiters},
        "IngestSymbolFunctionRole": {budget + "*", session.LOCK_PREFIX + "*", watermark.PK_PREFIX + "*"},
    }
    for name, role in roles(translated).items():
        table_statements = [
            st for st in statements(role) if any(str(a).lower().startswith("dynamodb:") for a in as_list(st["Action"]))
        ]
        if name not in wanted:
            assert table_statements == [], f"{name} may use the state table"
            continue
        allowed: set[str] = set()
        for st in table_statements:
            keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            assert keys is not None, f"{name}: state-table access without a dynamodb:LeadingKeys condition"
            assert set(as_list(keys)) <= wanted[name], name
            allowed |= set(as_list(keys))
            if "dynamodb:UpdateItem" in as_list(st["Action"]):  # the budget's next slot, the waiting runs' tokens
                assert set(as_list(keys)) in ({budget + "*"}, {waiters}), name
        assert allowed == wanted[name], name


def test_the_state_machine_invokes_only_the_template_functions_and_starts_only_itself(translated):
    machine = grants(roles(translated)["IngestPipelineRole"])
    assert not any(a.startswith(("secretsmanager:", "dynamodb:", "sns:")) for a in machine)
    assert machine["states:startexecution"] == {f"{STATES}:stateMachine:pricefeed-${{AWS::StackName}}"}
    name = translated["Resources"]["IngestPipeline"]["Properties"]["StateMachineName"]
    assert render(name) == "pricefeed-${AWS::StackName}", "the self-grant must name this state machine"
