"""`POST /v1/features/query`: online features for entity keys (AIC data model §3.2 and §5), behind tokens.

A query names a feature service or `view:feature` refs, and entity rows (join key -> value, e.g.
`{"user_id": "<token>"}`); the answer is feature records (featureId, entity, entityKey, name, type,
value, timestamp, source, tags) from `lakehouse.features.feature_records`.

Tenant scoping, the row-level isolation of the Data Plane document: without `platform:admin` a caller
reads only views over tenant-scoped tables (the source table's catalog entry names a tenant column), and
only entity keys whose rows there all belong to the token's tenant. A key of another tenant and a key
nobody has are refused alike (403, naming the keys sent, never whose they are); a view over a
platform-wide table is answered as an unknown one is (404).
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from deltalake import DeltaTable
from fastapi import APIRouter, Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lakehouse import catalog, features
from lakehouse.auth import AUTH_RESPONSES, FEATURES_READ, Authenticator, Principal, Problem
from lakehouse.config import LakehouseConfig

MAX_ENTITIES = 100
Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]
EntityRow = Annotated[dict[Text, Text], Field(min_length=1, max_length=8, description="join key -> value")]
FeatureRef = Annotated[str, StringConstraints(pattern=r"^[^:]+:[^:]+$", max_length=256)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entities: list[EntityRow] = Field(
        min_length=1, max_length=MAX_ENTITIES, examples=[[{"user_id": "3f9a0c1e..."}]]
    )


class ServiceQuery(_Query):
    featureService: str = Field(min_length=1, max_length=256, examples=["churn"])


class FeatureListQuery(_Query):
    features: list[FeatureRef] = Field(
        min_length=1, max_length=100, examples=[["customer_order_stats:order_count"]]
    )


class FeatureRecord(BaseModel):
    """A feature value in the AIC feature record shape (§3.2), with the entity key it belongs to."""

    featureId: str = Field(examples=["customer_order_stats:order_count"])
    entity: str
    entityKey: str
    name: str
    type: str
    value: int | float | bool | str | None
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    source: str
    tags: list[str]


class FeatureAnswer(BaseModel):
    count: int
    features: list[FeatureRecord]


def _views(store, query: ServiceQuery | FeatureListQuery, in_scope: Callable[[Any], bool]) -> list:
    """The feature views the query reads. What is unknown, or outside the caller's scope, is a 404 naming
    the first such thing asked for, the same either way."""
    from feast.errors import FeatureServiceNotFoundException, FeatureViewNotFoundException

    if isinstance(query, ServiceQuery):
        unknown = HTTPException(404, detail=f"unknown feature service {query.featureService!r}")
        try:
            service = store.get_feature_service(query.featureService)
        except FeatureServiceNotFoundException:
            raise unknown from None
        views = [store.get_feature_view(p.name) for p in service.feature_view_projections]
        if not all(in_scope(view) for view in views):
            raise unknown
        return views
    chosen: dict[str, Any] = {}
    for ref in query.features:
        name, _, feature = ref.partition(":")
        try:
            view = chosen[name] if name in chosen else store.get_feature_view(name)
        except FeatureViewNotFoundException:
            view = None
        if view is None or feature not in {f.name for f in view.features} or not in_scope(view):
            raise HTTPException(404, detail=f"unknown feature {ref!r}")
        chosen[name] = view
    return list(chosen.values())


def _join_key(view) -> str:
    return view.entity_columns[0].name


def _outside_tenant(
    cfg: LakehouseConfig, views: Sequence, entries: dict[str, dict], rows: Sequence[dict], tenant: str
) -> list[str]:
    """`key='value'` of every requested key that is not only the tenant's in the views' source tables."""
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for dataset, key in {(catalog.dataset_id(v.tags["source_table"]), _join_key(v)) for v in views}:
        entry = entries[dataset]
        column = entry["tenantColumn"]
        for _, uri in catalog.located(entry):  # a resident source: every region's table
            if not DeltaTable.is_deltatable(uri, storage_options=cfg.storage_options):
                continue
            found = DeltaTable(uri, storage_options=cfg.storage_options).to_pyarrow_table(
                columns=list(dict.fromkeys([key, column])),  # the tenant entity's key is the tenant column
                filters=[(key, "in", sorted({row[key] for row in rows}))],
            )
            for value, owner in zip(found.column(key).to_pylist(), found.column(column).to_pylist()):
                owners[(key, value)].add(owner)
    wanted = dict.fromkeys((key, value) for row in rows for key, value in row.items())
    return [f"{key}={value!r}" for key, value in wanted if owners.get((key, value)) != {tenant}]


def router(config: Callable[[], LakehouseConfig], auth: Authenticator) -> APIRouter:
    """The feature query route; `config` is the app's configuration dependency."""
    api = APIRouter(tags=["features"])
    responses: dict[int | str, dict[str, Any]] = {
        **AUTH_RESPONSES,
        400: {"model": Problem, "description": "the body cannot be parsed"},
        403: {
            "model": Problem,
            "description": "the token lacks features:read or a tenant claim, or an "
            "entity key is not the token's tenant's",
        },
        404: {"model": Problem, "description": "unknown feature service or feature"},
    }

    @api.post("/v1/features/query", response_model=FeatureAnswer, responses=responses)
    def query_features(
        query: ServiceQuery | FeatureListQuery,
        cfg: Annotated[LakehouseConfig, Depends(config)],
        caller: Annotated[Principal, Depends(auth.require(FEATURES_READ))],
    ) -> FeatureAnswer:
        """Online features of the entity rows, from a feature service or a list of features."""
        entries = {} if caller.is_admin else {e["datasetId"]: e for e in catalog.list_entries(cfg)}

        def in_scope(view) -> bool:
            """Admins read every view; a tenant those over tenant-scoped tables."""
            source = entries.get(catalog.dataset_id(view.tags["source_table"]), {})
            return caller.is_admin or bool(source.get("tenantColumn"))

        views = _views(features.feature_store(cfg), query, in_scope)
        needed = sorted({_join_key(v) for v in views})
        rows = [dict(row) for row in query.entities]
        wrong = [i for i, row in enumerate(rows) if sorted(row) != needed]
        if wrong:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", "entities", wrong[0]),
                        "input": rows[wrong[0]],
                        "msg": f"every entity row needs exactly the join keys {', '.join(needed)}",
                    }
                ]
            )
        if not caller.is_admin:
            assert caller.tenant is not None  # a token without admin carries its tenant
            outside = _outside_tenant(cfg, views, entries, rows, caller.tenant)
            if outside:
                more = " ..." if len(outside) > 10 else ""
                raise HTTPException(
                    403,
                    detail=f"entity keys outside tenant {caller.tenant!r}: {', '.join(outside[:10])}{more}",
                )
        if isinstance(query, ServiceQuery):
            refs: str | list[str] = query.featureService
        else:
            refs = list(dict.fromkeys(query.features))  # Feast refuses a feature named twice
        records = features.feature_records(cfg, refs, rows)
        return FeatureAnswer(count=len(records), features=[FeatureRecord.model_validate(r) for r in records])

    return api
