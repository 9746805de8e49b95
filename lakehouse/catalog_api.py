"""Read-only HTTP API over the lake's data catalog (`<root>/catalog/`, see `lakehouse.catalog`), and the
feature query (`lakehouse.feature_api`), behind bearer tokens (`lakehouse.auth`).

- `GET /v1/data/catalog?domain=&tag=&classification=`: the entries, filtered;
- `GET /v1/data/catalog/{datasetId}`: one entry in the AIC catalog shape (404 if unknown);
- `GET /v1/data/catalog/{datasetId}/lineage?direction=upstream|downstream`: the chain, nearest first;
- `POST /v1/features/query`: online features for entity keys.

The catalog needs the scope `catalog:read`. A token with a tenant claim sees the tenant-scoped datasets
(their rows carry a tenant column, so the tenant has rows there); platform-wide entries need
`platform:admin`. An entry outside the caller's scope is answered exactly as an unknown one (404), and
lineage shows only the datasets the caller sees.

`python -m lakehouse.catalog_api` serves it on 127.0.0.1:$LAKEHOUSE_CATALOG_PORT (default 8090).
"""

import os
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from lakehouse import catalog, feature_api
from lakehouse.auth import AUTH_RESPONSES, CATALOG_READ, Authenticator, Principal, Problem
from lakehouse.config import LakehouseConfig
from lakehouse.local_issuer import LocalIssuer

DEFAULT_PORT = 8090
TITLE = "Lakehouse data catalog"


class SchemaField(BaseModel):
    name: str
    type: str
    description: str | None = None
    classification: str | None = None


class DatasetSchema(BaseModel):
    fields: list[SchemaField]


class ColumnSource(BaseModel):
    datasetId: str
    column: str


class Location(BaseModel):
    region: str | None = Field(description="the region of a resident dataset's table; null: the lake root")
    uri: str


class CatalogEntry(BaseModel):
    """A dataset in the AIC catalog shape, with the lakehouse's extra fields."""

    model_config = ConfigDict(populate_by_name=True)

    datasetId: str = Field(examples=["curated.events.daily_active_users"])
    domain: str
    name: str
    layer: str
    description: str | None = None
    schema_: DatasetSchema = Field(alias="schema")
    owner: str
    tags: list[str]
    location: str
    createdAt: str = Field(json_schema_extra={"format": "date-time"})
    updatedAt: str = Field(json_schema_extra={"format": "date-time"})
    classification: dict[str, str | None] = Field(description="column -> classification")
    retentionDays: int | None = None
    regions: list[str]
    subjectColumns: list[str]
    subjectPaths: dict[str, list[str]] = Field(
        default_factory=dict, description="raw and landing: subject column -> JSON paths in a line"
    )
    tenantColumn: str | None = None
    regionColumn: str | None = None
    latestPartition: str | None = None
    rowCount: int | None = None
    deltaVersion: int | None = None
    schemaVersion: int | None = Field(default=None, description="the schema registry's version of the table")
    lastRunId: str | None = None
    qualityStatus: str
    columnLineage: dict[str, list[ColumnSource]] = Field(
        description="column -> the upstream columns feeding it"
    )
    locations: list[Location] = Field(
        default_factory=list, description="where the data lives: each regional table with its region"
    )
    privacy: dict[str, Any] | None = Field(
        default=None,
        description="a differentially private release's declared privacy: epsilon and delta per release, "
        "threshold, clipping bounds, noise scales",
    )


class CatalogList(BaseModel):
    count: int
    datasets: list[CatalogEntry]


class LineageStep(BaseModel):
    datasetId: str
    via: str = Field(description="the dataset this one feeds (upstream) or is fed by (downstream)")
    runId: str
    codeVersion: str | None = None
    schemaVersion: int | None = None
    partitions: list[str]


class Lineage(BaseModel):
    datasetId: str
    direction: Literal["upstream", "downstream"]
    lineage: list[LineageStep]


def known(config: LakehouseConfig, dataset: str) -> bool:
    """Catalogued, or at least named in some lineage (a landing source is upstream only)."""
    return catalog.get_entry(config, dataset) is not None or any(
        catalog.lineage(config, dataset, d) for d in ("upstream", "downstream")
    )


def visible(caller: Principal, entry: dict) -> bool:
    """Admins see every entry; a tenant sees the tenant-scoped ones."""
    return caller.is_admin or bool(entry.get("tenantColumn"))


def strict_query(request: Request) -> None:
    """A repeated parameter (`?tag=a&tag=b`) or one the operation does not declare (`?domian=x`) would
    silently be ignored: either is refused instead (422)."""
    route, params = request.scope["route"], request.query_params
    operation = request.app.openapi()["paths"][route.path].get(request.method.lower(), {})
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    wrong = sorted({name for name in params if name not in declared or len(params.getlist(name)) > 1})
    if wrong:
        problem = "unknown parameter" if wrong[0] not in declared else "given more than once"
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", wrong[0]),
                    "msg": problem,
                    "input": params.getlist(wrong[0]),
                }
            ]
        )


def create_app(
    config_factory: Callable[[], LakehouseConfig] = LakehouseConfig.from_env,
    auth: Authenticator | None = None,
) -> FastAPI:
    """The app; `auth` defaults to the issuer, audience and keys configured in the environment (the
    local issuer's, created here if need be, in the embedded setup)."""
    if auth is None:
        auth = Authenticator()
        issuer = LocalIssuer()
        if auth.settings.jwks == str(issuer.jwks_path):
            issuer.ensure_keys()  # trusted from the start, before the first `lakehouse token`
    app = FastAPI(title=TITLE, version="1.0.0", description=__doc__, dependencies=[Depends(strict_query)])

    def config() -> LakehouseConfig:
        return config_factory()

    Config = Annotated[LakehouseConfig, Depends(config)]
    Caller = Annotated[Principal, Depends(auth.require(CATALOG_READ))]
    refused = {
        **AUTH_RESPONSES,
        403: {**AUTH_RESPONSES[403], "description": "the token lacks catalog:read, or a tenant claim"},
    }
    not_found = {
        **refused,
        404: {
            "model": Problem,
            "description": "unknown datasetId (or outside the caller's scope: the same answer)",
        },
    }

    def unknown(dataset: str) -> HTTPException:
        return HTTPException(404, detail=f"unknown dataset {dataset!r}")

    @app.get("/v1/data/catalog", response_model=CatalogList, responses=refused, tags=["catalog"])
    def list_datasets(
        cfg: Config,
        caller: Caller,
        domain: str | None = None,
        tag: str | None = None,
        classification: str | None = None,
    ) -> CatalogList:
        entries = [
            e
            for e in catalog.list_entries(cfg, domain=domain, tag=tag, classification=classification)
            if visible(caller, e)
        ]
        return CatalogList(count=len(entries), datasets=[CatalogEntry.model_validate(e) for e in entries])

    @app.get(
        "/v1/data/catalog/{datasetId}", response_model=CatalogEntry, responses=not_found, tags=["catalog"]
    )
    def get_dataset(datasetId: str, cfg: Config, caller: Caller) -> CatalogEntry:
        entry = catalog.get_entry(cfg, datasetId)
        if entry is None or not visible(caller, entry):
            raise unknown(datasetId)
        return CatalogEntry.model_validate(entry)

    @app.get(
        "/v1/data/catalog/{datasetId}/lineage", response_model=Lineage, responses=not_found, tags=["catalog"]
    )
    def get_lineage(
        datasetId: str,
        cfg: Config,
        caller: Caller,
        direction: Annotated[Literal["upstream", "downstream"], Query()] = "upstream",
    ) -> Lineage:
        if caller.is_admin:
            chain = catalog.lineage(cfg, datasetId, direction)
            if not chain and not known(cfg, datasetId):
                raise unknown(datasetId)
        else:
            seen = {e["datasetId"] for e in catalog.list_entries(cfg) if visible(caller, e)}
            if datasetId not in seen:
                raise unknown(datasetId)
            # A step is shown when both its ends are in scope: names outside it never appear.
            chain = [
                step
                for step in catalog.lineage(cfg, datasetId, direction)
                if step["datasetId"] in seen and step["via"] in seen
            ]
        return Lineage(
            datasetId=datasetId, direction=direction, lineage=[LineageStep.model_validate(s) for s in chain]
        )

    app.include_router(feature_api.router(config, auth))
    return app


def main() -> None:
    import uvicorn

    port = int(os.environ.get("LAKEHOUSE_CATALOG_PORT", DEFAULT_PORT))
    print(f"{TITLE}: http://127.0.0.1:{port}/v1/data/catalog (OpenAPI at /docs)", flush=True)
    uvicorn.run(create_app(), host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
