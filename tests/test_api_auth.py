"""The data APIs behind bearer tokens, over real HTTP (uvicorn on 127.0.0.1): refusals (401/403) and their
bodies, tenant scoping of catalog and feature answers, `lakehouse token`, a JWKS URL; then Schemathesis
against the OpenAPI spec. On a catalog and a curated Delta table on the test S3 (written by the lake's
writer on Sail) and a Feast SQLite online store materialized from it."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import json
import stat
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from lakehouse import catalog, delta, features
from lakehouse.auth import (
    ADMIN,
    CATALOG_READ,
    FEATURES_READ,
    Authenticator,
    AuthError,
    AuthSettings,
    TokenVerifier,
    local_issuer_dir,
)
from lakehouse.catalog import Entry, Field, Materialization
from lakehouse.catalog_api import create_app
from lakehouse.config import LakehouseConfig
from lakehouse.local_issuer import LocalIssuer
from orchestration.cli import main as cli_main
from tests.helpers import call_http, served

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
STATS = (
    "dt date, user_id string, tenant_id string, region string, order_count bigint, "
    "total_spend decimal(18,2), last_order_at timestamp"
)
COST = (
    "dt date, tenant_id string, runs bigint, tokens_in bigint, tokens_out bigint, cost_usd double, "
    "daily_budget_usd double, budget_used_ratio double, is_warning boolean, is_critical boolean"
)
AT = dt.datetime(2024, 1, 1, 9, 30)
TENANT_SCOPED = [
    "curated.ai_ops.tenant_daily_cost_vs_budget",
    "curated.commerce.customer_order_stats",
    "processed.commerce.orders",
    "raw.commerce.orders",
]
PLATFORM_WIDE = ["curated.commerce.daily_revenue_by_currency", "curated.iot.device_daily_health"]
KNOWN_DATASET, UNKNOWN_DATASET = "curated.commerce.customer_order_stats", "raw.nope.nothing"
CHURN = "customer_order_stats"


def catalogued(config: LakehouseConfig) -> list[Materialization]:
    """landing -> raw -> processed orders -> customer_order_stats (tenant-scoped) and -> daily revenue
    (platform-wide); device health (platform-wide, a feature view's source)."""

    def m(path: str, upstream: str | None, tenant_column: str | None) -> Materialization:
        entry = Entry(
            path=path,
            owner="team:test",
            description=f"the {path} table",
            location=f"{config.root}/{path}",
            fields=[Field("dt", "date")],
            tenant_column=tenant_column,
            quality_status="passed",
        )
        return Materialization(
            run_id=f"run-{path}",
            entry=entry,
            partitions=["2024-01-01"],
            rows_written=1,
            code_version="abc",
            upstream=[(upstream, None)] if upstream else [],
        )

    return [
        m("raw/commerce/orders", "landing/commerce/orders", "tenant_id"),
        m("processed/commerce/orders", "raw/commerce/orders", "tenant_id"),
        m("curated/commerce/customer_order_stats", "processed/commerce/orders", "tenant_id"),
        m("curated/commerce/daily_revenue_by_currency", "processed/commerce/orders", None),
        m("curated/ai_ops/tenant_daily_cost_vs_budget", None, "tenant_id"),
        m("curated/iot/device_daily_health", None, None),
    ]


@pytest.fixture(scope="module")
def lake_api(s3_server, spark, tmp_path_factory) -> Iterator[tuple[str, LakehouseConfig]]:
    """A lake of its own with that catalog, customer_order_stats rows of tenants a and b (and one customer
    in both), materialized online; the app served with the default trust: the local issuer."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path_factory.mktemp("feast")))
        for name in (
            "LAKEHOUSE_FEAST_ONLINE_STORE",
            "LAKEHOUSE_FEAST_REDIS",
            "LAKEHOUSE_AUTH_ISSUER",
            "LAKEHOUSE_AUTH_AUDIENCE",
            "LAKEHOUSE_AUTH_JWKS",
            "LAKEHOUSE_AUTH_TENANT_CLAIM",
        ):
            env.delenv(name, raising=False)
        config = dataclasses.replace(
            LakehouseConfig.from_env(), root=f"s3://lakehouse/tests/api-auth-{uuid.uuid4().hex[:8]}"
        )
        rows = [
            (D1, "tok-a1", "tenant-a", "eu-west-1", 2, Decimal("20.00"), AT),
            (D1, "tok-a2", "tenant-a", "eu-west-1", 1, Decimal("10.00"), AT),
            (D1, "tok-b1", "tenant-b", "us-east-1", 5, Decimal("50.00"), AT),
            (D1, "tok-shared", "tenant-a", "eu-west-1", 3, Decimal("30.00"), AT),
            (D2, "tok-shared", "tenant-b", "us-east-1", 4, Decimal("40.00"), AT),
        ]
        delta.write_partitions(
            spark.createDataFrame(rows, STATS),
            config.table_uri("curated", "commerce", "customer_order_stats"),
            [D1, D2],
            config.storage_options,
        )
        costs = [
            (D1, "tenant-a", 10, 100, 50, 1.5, 10.0, 0.15, False, False),
            (D1, "tenant-b", 20, 200, 90, 9.5, 10.0, 0.95, True, False),
        ]
        delta.write_partitions(
            spark.createDataFrame(costs, COST),
            config.table_uri("curated", "ai_ops", "tenant_daily_cost_vs_budget"),
            [D1],
            config.storage_options,
        )
        catalog.record(config, catalogued(config))
        features.apply(config)
        features.materialize(config, D1, D2, [CHURN, "tenant_ai_cost"])
        with served(create_app(lambda: config)) as base:
            yield base, config


def token(*scopes: str, tenant: str | None = None, **options) -> str:
    return LocalIssuer().issue(scopes, tenant=tenant, **options)


def call(base: str, path: str, bearer: str | None, body: dict | None = None, **query: str):
    url = base + urllib.parse.quote(path) + (f"?{urllib.parse.urlencode(query)}" if query else "")
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return call_http(url, "POST" if body is not None else "GET", headers, body)


def ids(body: dict) -> list[str]:
    assert body["count"] == len(body["datasets"])
    return [entry["datasetId"] for entry in body["datasets"]]


def query(base: str, bearer: str, entities: list[dict], **what) -> tuple[int, object]:
    status, _, body = call(base, "/v1/features/query", bearer, {**what, "entities": entities})
    return status, body


def values(body: dict) -> list[tuple]:
    assert body["count"] == len(body["features"])
    return [(r["featureId"], r["entityKey"], r["value"]) for r in body["features"]]


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tokens_that_do_not_verify_are_401_with_the_reason(lake_api, tmp_path) -> None:
    base, _ = lake_api
    configured = AuthSettings.from_env()
    good = token(CATALOG_READ, FEATURES_READ, tenant="tenant-a")
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    refused = {
        "no token": (None, "a bearer token is required (Authorization: Bearer <JWT>)"),
        "not a JWT": ("not-a-jwt", "the bearer token is not a well-formed JWT"),
        "wrong issuer": (
            token(
                CATALOG_READ,
                FEATURES_READ,
                tenant="tenant-a",
                settings=dataclasses.replace(configured, issuer="https://idp.example.com/"),
            ),
            "the token was not issued by the trusted issuer",
        ),
        "another issuer's key": (
            LocalIssuer(tmp_path / "other").issue([CATALOG_READ], "tenant-a"),
            "the token is not signed by a key of the trusted issuer",
        ),
        "expired": (
            token(CATALOG_READ, FEATURES_READ, tenant="tenant-a", ttl_seconds=-120),
            "the token has expired",
        ),
        "wrong audience": (
            token(
                CATALOG_READ,
                FEATURES_READ,
                tenant="tenant-a",
                settings=dataclasses.replace(configured, audience="another-api"),
            ),
            "the token is not meant for this API (audience)",
        ),
        "tampered claims": (
            ".".join([header, b64({**claims, "tenant_id": "tenant-b"}), signature]),
            "the token's signature does not verify",
        ),
        "unsigned (alg none)": (
            ".".join([b64({"alg": "none", "kid": kid}), payload, ""]),
            "the token's signing algorithm is not accepted",
        ),
        "HS256 keyed with the public key": (
            jwt.encode(
                claims,
                json.loads(LocalIssuer().jwks_path.read_text())["keys"][0]["x"],
                algorithm="HS256",
                headers={"kid": kid},
            ),
            "the token's signing algorithm is not accepted",
        ),
    }
    churn = {"featureService": "churn", "entities": [{"user_id": "tok-a1"}]}
    for case, (bearer, detail) in refused.items():
        answers = [
            call(base, f"/v1/data/catalog/{KNOWN_DATASET}", bearer),
            call(base, f"/v1/data/catalog/{UNKNOWN_DATASET}", bearer),
            call(base, "/v1/data/catalog", bearer),
            call(base, "/v1/features/query", bearer, churn),
        ]
        for status, headers, body in answers:
            assert (status, body) == (401, {"detail": detail}), case
            challenge = headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="lakehouse"'), case
            assert ('error="invalid_token"' in challenge) == (bearer is not None), case
        # The answer is about the token: the same whether the dataset exists or not.
        assert answers[0] == answers[1], case
    assert call(base, "/v1/data/catalog", good)[0] == 200
    basic = call_http(base + "/v1/data/catalog", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic[::2] == (401, {"detail": refused["no token"][1]})


def test_missing_scope_or_tenant_is_403(lake_api) -> None:
    base, _ = lake_api
    features_only = token(FEATURES_READ, tenant="tenant-a")
    catalog_only = token(CATALOG_READ, tenant="tenant-a")
    no_tenant = token(CATALOG_READ, FEATURES_READ)
    churn = {"featureService": "churn", "entities": [{"user_id": "tok-a1"}]}
    cases = [
        (features_only, None, "the token lacks the scope 'catalog:read'", 'scope="catalog:read"'),
        (catalog_only, churn, "the token lacks the scope 'features:read'", 'scope="features:read"'),
        (
            no_tenant,
            None,
            "the token has no 'tenant_id' claim and not the scope 'platform:admin'",
            'scope="platform:admin"',
        ),
        (
            no_tenant,
            churn,
            "the token has no 'tenant_id' claim and not the scope 'platform:admin'",
            'scope="platform:admin"',
        ),
    ]
    for bearer, body, detail, scope in cases:
        paths = (
            ["/v1/features/query"]
            if body
            else [
                f"/v1/data/catalog/{KNOWN_DATASET}",
                f"/v1/data/catalog/{UNKNOWN_DATASET}",
                f"/v1/data/catalog/{KNOWN_DATASET}/lineage",
            ]
        )
        answers = [call(base, path, bearer, body) for path in paths]
        for status, headers, answer in answers:
            assert (status, answer) == (403, {"detail": detail})
            challenge = headers["www-authenticate"]
            assert 'error="insufficient_scope"' in challenge and scope in challenge
        assert all(a[1:] == answers[0][1:] for a in answers)  # nothing says which dataset exists


def test_catalog_answers_are_tenant_scoped(lake_api) -> None:
    base, _ = lake_api
    tenant_a, tenant_b = token(CATALOG_READ, tenant="tenant-a"), token(CATALOG_READ, tenant="tenant-b")
    admin = token(CATALOG_READ, ADMIN)
    assert ids(call(base, "/v1/data/catalog", admin)[2]) == sorted(TENANT_SCOPED + PLATFORM_WIDE)
    # Entries describe tables every tenant has rows in: each tenant sees the tenant-scoped ones only.
    assert ids(call(base, "/v1/data/catalog", tenant_a)[2]) == TENANT_SCOPED
    assert ids(call(base, "/v1/data/catalog", tenant_b)[2]) == TENANT_SCOPED
    assert ids(call(base, "/v1/data/catalog", tenant_a, domain="iot")[2]) == []
    assert ids(call(base, "/v1/data/catalog", admin, domain="iot")[2]) == ["curated.iot.device_daily_health"]

    status, _, entry = call(base, f"/v1/data/catalog/{KNOWN_DATASET}", tenant_a)
    assert status == 200 and entry["tenantColumn"] == "tenant_id"
    for dataset in PLATFORM_WIDE:
        assert call(base, f"/v1/data/catalog/{dataset}", admin)[0] == 200
        hidden = call(base, f"/v1/data/catalog/{dataset}", tenant_a)
        absent = call(base, f"/v1/data/catalog/{UNKNOWN_DATASET}", tenant_a)
        assert hidden[::2] == (404, {"detail": f"unknown dataset {dataset!r}"})
        assert absent[::2] == (404, {"detail": f"unknown dataset {UNKNOWN_DATASET!r}"})
        assert set(hidden[1]) == set(absent[1])  # the same headers: a platform-wide entry looks like no entry
        assert call(base, f"/v1/data/catalog/{dataset}/lineage", tenant_a)[::2] == hidden[::2]

    def lineage(bearer: str, dataset: str, direction: str) -> list[str]:
        status, _, body = call(base, f"/v1/data/catalog/{dataset}/lineage", bearer, direction=direction)
        assert status == 200
        return [step["datasetId"] for step in body["lineage"]]

    assert lineage(admin, "processed.commerce.orders", "downstream") == [
        "curated.commerce.customer_order_stats",
        "curated.commerce.daily_revenue_by_currency",
    ]
    assert lineage(tenant_a, "processed.commerce.orders", "downstream") == [
        "curated.commerce.customer_order_stats"
    ]
    assert lineage(admin, KNOWN_DATASET, "upstream") == [
        "processed.commerce.orders",
        "raw.commerce.orders",
        "landing.commerce.orders",
    ]
    assert lineage(tenant_a, KNOWN_DATASET, "upstream") == [
        "processed.commerce.orders",
        "raw.commerce.orders",
    ]
    assert lineage(admin, "landing.commerce.orders", "downstream")[0] == "raw.commerce.orders"
    assert call(base, "/v1/data/catalog/landing.commerce.orders/lineage", tenant_a)[::2] == (
        404,
        {"detail": "unknown dataset 'landing.commerce.orders'"},
    )


def test_feature_rows_are_the_tokens_tenants_only(lake_api) -> None:
    base, _ = lake_api
    tenant_a, tenant_b = token(FEATURES_READ, tenant="tenant-a"), token(FEATURES_READ, tenant="tenant-b")
    admin = token(FEATURES_READ, ADMIN)
    status, body = query(
        base, tenant_a, [{"user_id": "tok-a1"}, {"user_id": "tok-a2"}], featureService="churn"
    )
    assert status == 200 and values(body) == [
        (f"{CHURN}:order_count", "tok-a1", 2),
        (f"{CHURN}:total_spend", "tok-a1", 20.0),
        (f"{CHURN}:order_count", "tok-a2", 1),
        (f"{CHURN}:total_spend", "tok-a2", 10.0),
    ]
    record = body["features"][0]
    assert (record["entity"], record["type"], record["source"], record["timestamp"]) == (
        "customer",
        "int",
        "curated.commerce.customer_order_stats",
        "2024-01-02T00:00:00Z",
    )
    status, body = query(base, tenant_a, [{"user_id": "tok-a2"}], features=[f"{CHURN}:total_spend"])
    assert status == 200 and values(body) == [(f"{CHURN}:total_spend", "tok-a2", 10.0)]

    # Another tenant's key, a key nobody has, a key in two tenants' rows: refused alike, nothing answered.
    assert query(base, tenant_b, [{"user_id": "tok-a1"}], featureService="churn") == (
        403,
        {"detail": "entity keys outside tenant 'tenant-b': user_id='tok-a1'"},
    )
    assert query(base, tenant_b, [{"user_id": "tok-nobody"}], featureService="churn") == (
        403,
        {"detail": "entity keys outside tenant 'tenant-b': user_id='tok-nobody'"},
    )
    assert query(base, tenant_a, [{"user_id": "tok-shared"}], featureService="churn") == (
        403,
        {"detail": "entity keys outside tenant 'tenant-a': user_id='tok-shared'"},
    )
    assert query(base, tenant_a, [{"user_id": "tok-a1"}, {"user_id": "tok-b1"}], featureService="churn") == (
        403,
        {"detail": "entity keys outside tenant 'tenant-a': user_id='tok-b1'"},
    )
    status, body = query(base, tenant_b, [{"user_id": "tok-b1"}], features=[f"{CHURN}:order_count"])
    assert status == 200 and values(body) == [(f"{CHURN}:order_count", "tok-b1", 5)]
    # The platform admin reads any key; the customer in both tenants has its latest row (D2, tenant b).
    status, body = query(
        base, admin, [{"user_id": "tok-b1"}, {"user_id": "tok-shared"}], features=[f"{CHURN}:order_count"]
    )
    assert status == 200 and values(body) == [
        (f"{CHURN}:order_count", "tok-b1", 5),
        (f"{CHURN}:order_count", "tok-shared", 4),
    ]

    # The tenant entity: a tenant reads its own row (its key is the tenant column), not another's.
    status, body = query(base, tenant_b, [{"tenant_id": "tenant-b"}], features=["tenant_ai_cost:cost_usd"])
    assert status == 200 and values(body) == [("tenant_ai_cost:cost_usd", "tenant-b", 9.5)]
    assert query(base, tenant_b, [{"tenant_id": "tenant-a"}], features=["tenant_ai_cost:cost_usd"]) == (
        403,
        {"detail": "entity keys outside tenant 'tenant-b': tenant_id='tenant-a'"},
    )

    # Views over platform-wide tables are unknown to a tenant, exactly as views that do not exist.
    capacity = [{"tenant_id": "tenant-a", "device_id": "dev-1"}]
    assert query(base, tenant_a, capacity, featureService="capacity") == (
        404,
        {"detail": "unknown feature service 'capacity'"},
    )
    assert query(base, tenant_a, capacity, featureService="nope") == (
        404,
        {"detail": "unknown feature service 'nope'"},
    )
    assert query(base, tenant_a, [{"device_id": "dev-1"}], features=["device_health:anomalies"]) == (
        404,
        {"detail": "unknown feature 'device_health:anomalies'"},
    )
    assert query(base, tenant_a, [{"device_id": "dev-1"}], features=["nope:anomalies"]) == (
        404,
        {"detail": "unknown feature 'nope:anomalies'"},
    )
    # ... whatever else the query says: wrong join keys, or an unknown ref after it.
    assert query(base, tenant_a, [{"user_id": "tok-a1"}], features=["device_health:anomalies"]) == (
        404,
        {"detail": "unknown feature 'device_health:anomalies'"},
    )
    refs = ["device_health:anomalies", "nope:x"]
    assert query(base, tenant_a, [{"device_id": "dev-1"}], features=refs) == (
        404,
        {"detail": "unknown feature 'device_health:anomalies'"},
    )
    status, body = query(base, admin, capacity, featureService="capacity")  # no device rows anywhere
    assert (
        status == 200
        and {(r["featureId"].split(":")[0], r["entityKey"]) for r in body["features"]}
        == {("tenant_ai_cost", "tenant-a")}
        and body["count"] == 8
    )

    status, body = query(base, tenant_a, [{"account_id": "acc-1"}], featureService="churn")
    assert status == 422 and body["detail"][0]["loc"] == ["body", "entities", 0]
    assert body["detail"][0]["msg"] == "every entity row needs exactly the join keys user_id"
    status, body = query(
        base, tenant_a, [{"user_id": "tok-a1"}], featureService="churn", features=[f"{CHURN}:order_count"]
    )
    assert status == 422  # a service or a list of features, not both


def test_token_command_prints_a_token_the_api_accepts(lake_api, capsys) -> None:
    base, _ = lake_api
    capsys.readouterr()
    assert cli_main(["token", "--scope", "catalog:read features:read", "--tenant", "tenant-a"]) == 0
    out, err = capsys.readouterr()
    printed = out.strip()
    status, _, body = call(base, "/v1/data/catalog", printed)
    assert status == 200 and ids(body) == TENANT_SCOPED
    claims = jwt.decode(printed, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["scope"], claims["tenant_id"]) == (
        "lakehouse-local",
        "lakehouse-api",
        "catalog:read features:read",
        "tenant-a",
    )
    assert claims["exp"] - claims["iat"] == 3600
    folder = local_issuer_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "issuer-key.pem").stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in out + err and err == ""
    public = json.loads((folder / "jwks.json").read_text())["keys"]
    assert len(public) == 1 and "d" not in public[0]  # the private scalar never leaves the key file

    assert cli_main(["token", "--scope", "catalog:write", "--tenant", "tenant-a"]) == 2
    assert "got catalog:write" in capsys.readouterr().err
    assert cli_main(["token", "--scope", "catalog:read"]) == 2
    assert "needs --tenant" in capsys.readouterr().err
    assert cli_main(["token", "--scope", "catalog:read", "--scope", "platform:admin"]) == 0
    assert call(base, "/v1/data/catalog", capsys.readouterr().out.strip())[0] == 200


def test_keys_from_a_jwks_url(lake_api, tmp_path) -> None:
    """The issuer's keys served over HTTP, as an identity provider publishes them; keys not to be had."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(local_issuer_dir()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        verifier = TokenVerifier(dataclasses.replace(AuthSettings.from_env(), jwks=url))
        principal = verifier.verify(token(FEATURES_READ, tenant="tenant-b", subject="svc-1"))
        assert (principal.subject, principal.tenant, principal.scopes) == (
            "svc-1",
            "tenant-b",
            {FEATURES_READ},
        )
    finally:
        server.shutdown()
        server.server_close()
    # Keys that cannot be had are the server's problem (503), not a verdict on the token.
    for unavailable in (url, str(tmp_path / "missing.json")):
        with pytest.raises(AuthError) as refused:
            TokenVerifier(dataclasses.replace(AuthSettings.from_env(), jwks=unavailable)).verify(token(ADMIN))
        assert (refused.value.status, refused.value.detail) == (
            503,
            "the token issuer's keys cannot be loaded",
        )


# The spec as the app publishes it, built at import with a trust that touches no file (the default would
# create the local issuer's keys in the user's state dir); the cases run against the served app.
SPEC_ONLY = Authenticator(AuthSettings(issuer="spec", audience="spec", jwks="https://spec.invalid/jwks.json"))
schema = schemathesis.openapi.from_dict(create_app(auth=SPEC_ONLY).openapi())


@schema.auth()
class AdminToken:
    """A valid token (platform admin, both read scopes) on every case but those testing its absence."""

    def get(self, case, context) -> str:
        return token(CATALOG_READ, FEATURES_READ, ADMIN)

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(
    max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_the_apis_keep_their_openapi_spec(case, lake_api) -> None:
    """Every operation answers as its spec says: statuses, bodies, content types; refuses what breaks
    the spec; 401 without a token."""
    base, _ = lake_api
    # Which join keys an entity row needs depends on the feature service or views named, which a JSON schema
    # cannot say: such a schema-valid query is refused (422, naming the keys), so that check is off for it.
    excluded = [positive_data_acceptance] if case.method == "POST" else []
    case.call_and_validate(base_url=base, excluded_checks=excluded)
