"""The events domain: event envelopes from the event-driven platform, landing -> raw -> processed -> curated."""


import datetime as dt

import dagster as dg

from lakehouse import landing
from lakehouse.datasets import Dataset
from orchestration.factory import DAILY, dataset_asset, dataset_spec, run_attributes, partition_days, write_metadata
from orchestration.resources import LakeResource
from transforms import events as t

DOMAIN = "events"
OWNER = "team:event-platform"

LANDING = dg.AssetSpec(
    key=["landing", DOMAIN, "events"], group_name=DOMAIN, owners=[OWNER], kinds={"s3", "json"},
    partitions_def=DAILY,
    description="Event envelopes as JSON lines, dropped by upstream systems (or the synthetic generator) "
                "under landing/events/dt=YYYY-MM-DD/.",
)

RAW = Dataset(
    name="events", domain=DOMAIN, layer="raw", owner=OWNER,
    description="Every landing line of the day, unparsed, with its source file, line number, ingestion time and run.",
    columns={"line": "the landing line exactly as received", "line_number": "1-based line in source_file"},
)
PROCESSED = Dataset(
    name="events", domain=DOMAIN, layer="processed", owner=OWNER, upstream=(RAW.path,), primary_key=("event_id",),
    description="Parsed, typed events, one per eventId per day; late events (dated before arrival) flagged is_late.",
    columns={"event_ts": "event time (UTC)", "payload": "data.payload as JSON", "metadata": "data.metadata as JSON"},
)
QUARANTINE = Dataset(
    name="events", domain=DOMAIN, layer="quarantine", owner=OWNER, upstream=(RAW.path,),
    description="Landing lines that cannot become a valid event, with the rule they broke.",
    columns={"reason": "the first validation rule the line broke"},
)
HOURLY_EVENT_COUNTS = Dataset(
    name="hourly_event_counts", domain=DOMAIN, layer="curated", owner=OWNER, upstream=(PROCESSED.path,),
    primary_key=("dt", "event_hour", "event_type", "region"), transform=t.hourly_event_counts,
    description="Events and distinct users per event hour, type and region, by arrival day.",
)
DAILY_ACTIVE_USERS = Dataset(
    name="daily_active_users", domain=DOMAIN, layer="curated", owner=OWNER, upstream=(PROCESSED.path,),
    primary_key=("dt",), transform=t.daily_active_users,
    description="Distinct users, sessions, events and registrations per day.",
)
DAILY_ORDER_REVENUE = Dataset(
    name="daily_order_revenue", domain=DOMAIN, layer="curated", owner=OWNER, upstream=(PROCESSED.path,),
    primary_key=("dt", "currency"), transform=t.daily_order_revenue,
    description="Orders and revenue per day and currency, from order.created payloads.",
)


@dg.multi_asset(specs=[dataset_spec(RAW, deps=[LANDING.key])], **run_attributes(RAW))
def raw_events(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    days = partition_days(context)
    files = landing.landing_files(lake.config, DOMAIN, days)
    file_count = sum(map(len, files.values()))
    context.log.info(f"{file_count} landing files for {len(days)} partition(s)")
    with landing.staged_lines(lake.config, DOMAIN, files) as folder:
        lines = lake.spark.read.parquet(folder) if folder else lake.spark.createDataFrame([], landing.LINES_DDL)
        raw = t.raw_events(lines, context.run_id, dt.datetime.now(dt.timezone.utc))
        result = lake.write(RAW.path, raw, days)
    return dg.MaterializeResult(metadata={**write_metadata(result, raw.schema, RAW.columns),
                                          "landing_files": file_count})


@dg.multi_asset(specs=[dataset_spec(PROCESSED), dataset_spec(QUARANTINE)], **run_attributes(PROCESSED))
def processed_events(context: dg.AssetExecutionContext, lake: LakeResource):
    days = partition_days(context)
    parsed = t.parse_events(lake.read(RAW.path, days))
    processed = t.processed_events(parsed)
    quarantined = t.quarantined_events(parsed, context.run_id, dt.datetime.now(dt.timezone.utc))
    written = lake.write(PROCESSED.path, processed, days)
    held = lake.write(QUARANTINE.path, quarantined, days)
    raw_rows = lake.read(RAW.path, days).count()
    duplicates = raw_rows - written.row_count - held.row_count
    yield dg.MaterializeResult(asset_key=PROCESSED.key_path, metadata={
        **write_metadata(written, processed.schema, PROCESSED.columns),
        "input_lines": raw_rows, "duplicates_removed": duplicates, "quarantined_rows": held.row_count})
    yield dg.MaterializeResult(asset_key=QUARANTINE.key_path,
                               metadata=write_metadata(held, quarantined.schema, QUARANTINE.columns))


CURATED = (HOURLY_EVENT_COUNTS, DAILY_ACTIVE_USERS, DAILY_ORDER_REVENUE)
EVENTS_DATASETS = (RAW, PROCESSED, QUARANTINE, *CURATED)
EVENTS_ASSETS = [LANDING, raw_events, processed_events, *(dataset_asset(d) for d in CURATED)]
