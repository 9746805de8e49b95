"""The single-machine peer: the events day in DuckDB, written as Delta by delta-rs.

What a data engineer with one machine would write instead of the lakehouse: the same landing lines,
the same rules (transforms/events.py and the rules the declaration implies: residency, envelope
versions), the same quarantine, de-duplication, tokenization and masking (transforms/common.py), the
same checks of the processed rows (assets/events) and the same three curated aggregates, each layer
written as a Delta table partitioned by `dt`. No catalog, lineage, audit or Data Docs: those are what
the product adds, and what it has to pay for while still keeping up.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from assets.events import PROCESSED
from lakehouse import landing, storage
from lakehouse.config import LakehouseConfig
from transforms import events as rules

REGIONS = PROCESSED.allowed_regions
KNOWN_MAJORS = PROCESSED.envelope_versions
UUID = rules.UUID_PATTERN.strip("^$")  # regexp_full_match anchors itself
JSON_STRING = '"(?:[^"\\\\]|\\\\.)*"'


@dataclass
class PeerRun:
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _sql_list(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _mask(value: str) -> str:
    return (
        f"CASE WHEN {value} IS NULL THEN NULL "
        f"WHEN contains({value}, '@') THEN substr({value}, 1, 1) || '***@' || split_part({value}, '@', -1) "
        f"WHEN regexp_full_match({value}, '\\d{{1,3}}(\\.\\d{{1,3}}){{3}}') "
        f"THEN split_part({value}, '.', 1) || '.' || split_part({value}, '.', 2) || '.x.x' "
        f"ELSE substr({value}, 1, 1) || '***' END"
    )


def _token(value: str, key: str) -> str:
    return f"CASE WHEN {value} IS NULL THEN NULL ELSE sha256('{key}' || '|' || {value}) END"


def _without(json_text: str, fields: tuple[str, ...]) -> str:
    for name in fields:
        json_text = f"""regexp_replace({json_text}, '"{name}":{JSON_STRING}', '"{name}":null', 'g')"""
    return json_text


def _tokenized_members(json_text: str, name: str, key: str) -> str:
    """Every `"name": value` member of the JSON text holding the token of its value (any depth)."""
    normalized = f"""regexp_replace({json_text}, '"{name}"\\s*:\\s*', '"{name}":', 'g')"""
    raws = f"""regexp_extract_all(t, '"{name}":({JSON_STRING}|-?[0-9][0-9.eE+-]*)', 1)"""
    value = """json_extract_string('{"v":' || raw || '}', '$.v')"""
    return (
        f"(SELECT list_reduce(list_prepend(t, list_reverse_sort({raws})), lambda acc, raw: replace(acc, "
        f"""'"{name}":' || raw, '"{name}":"' || {_token(value, key)} || '"')) FROM (SELECT {normalized} t))"""
    )


def _processed_sql(key: str) -> str:
    envelope = ", ".join(f"j->>'$.{field}' AS {column}" for column, field in rules.ENVELOPE.items())
    missing = " ".join(
        f"WHEN j->>'$.{name}' IS NULL THEN 'missing_required_field:{name}'" for name in rules.REQUIRED_FIELDS
    )
    return f"""
    WITH parsed AS (
        SELECT dt, source_file, line_number, line,
               CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT' THEN line::JSON END AS j
        FROM raw
    ), typed AS (
        SELECT *, try_cast(j->>'$.timestamp' AS TIMESTAMPTZ)::TIMESTAMP AS event_ts,
               (j->'$.data')::VARCHAR AS data
        FROM parsed
    ), fields AS (
        SELECT dt, {envelope}, event_ts, event_ts::DATE AS event_date, event_ts::DATE < dt AS is_late,
               (data::JSON->'$.payload')::VARCHAR AS raw_payload,
               (data::JSON->'$.metadata')::VARCHAR AS raw_meta,
               source_file, line_number, line,
               CASE WHEN j IS NULL THEN 'malformed_json' {missing}
                    WHEN NOT regexp_full_match(j->>'$.eventId', '{UUID}')
                        THEN 'invalid_event_id'
                    WHEN j->>'$.eventType' NOT IN ({_sql_list(rules.EVENT_TYPES)}) THEN 'unknown_event_type'
                    WHEN event_ts IS NULL THEN 'invalid_timestamp' END AS rule_reason
        FROM typed
    )
    SELECT dt, {", ".join(rules.ENVELOPE)}, event_ts, event_date, is_late,
           {_without("raw_payload", rules.PAYLOAD_PERSONAL)} AS payload,
           {_without("raw_meta", rules.METADATA_PERSONAL)} AS metadata,
           raw_payload::JSON->>'$.email' AS email, raw_payload::JSON->>'$.firstName' AS first_name,
           raw_payload::JSON->>'$.lastName' AS last_name, raw_meta::JSON->>'$.ipAddress' AS ip_address,
           source_file, line_number, line,
           coalesce(
               CASE WHEN version IS NOT NULL
                         AND split_part(trim(version), '.', 1) NOT IN ({_sql_list(KNOWN_MAJORS)})
                    THEN 'unknown_version:' || substr(version, 1, 40) END,
               rule_reason,
               CASE WHEN region IS NULL OR region NOT IN ({_sql_list(REGIONS)})
                    THEN 'region_not_allowed:' || coalesce(region, 'null') END
           ) AS quarantine_reason
    FROM fields
    """


def _accepted_sql(key: str) -> str:
    return f"""
    SELECT dt, event_id, event_type, event_source, version, correlation_id,
           {_token("user_id", key)} AS user_id, session_id, environment, region, tenant_id,
           event_ts, event_date, is_late, {_tokenized_members("payload", "userId", key)} AS payload, metadata,
           {_token("email", key)} AS email, {_mask("first_name")} AS first_name,
           {_mask("last_name")} AS last_name, {_mask("ip_address")} AS ip_address, source_file, line_number
    FROM output WHERE quarantine_reason IS NULL
    QUALIFY row_number() OVER (PARTITION BY dt, event_id ORDER BY source_file, line_number) = 1
    """


CHECKS_SQL = f"""
SELECT count(*) FILTER (WHERE event_type IS NULL) AS event_type_required,
       count(*) FILTER (WHERE event_ts IS NULL) AS event_ts_required,
       count(*) FILTER (WHERE NOT regexp_full_match(event_id, '{UUID}')) AS event_id_uuid,
       count(*) FILTER (WHERE event_type NOT IN ({_sql_list(rules.EVENT_TYPES)})) AS event_type_known,
       count(*) FILTER (WHERE event_source IS NULL) AS event_source_complete,
       count(*) FILTER (WHERE version IS NULL) AS version_complete
FROM processed
"""
CURATED_SQL = {
    "hourly_event_counts": """
        SELECT dt, date_trunc('hour', event_ts) AS event_hour, event_type, region,
               count(*) AS event_count, count(DISTINCT user_id) AS unique_users
        FROM processed GROUP BY ALL""",
    "daily_active_users": """
        SELECT dt, count(DISTINCT user_id) AS active_users, count(DISTINCT session_id) AS sessions,
               count(*) AS events,
               sum(CASE WHEN event_type = 'user.registered' THEN 1 ELSE 0 END) AS registrations
        FROM processed GROUP BY dt""",
    "daily_order_revenue": """
        SELECT dt, currency, count(*) AS orders, sum(amount)::DECIMAL(18, 2) AS revenue,
               sum(CASE WHEN amount IS NULL THEN 1 ELSE 0 END) AS orders_without_amount
        FROM (SELECT dt, payload::JSON->>'$.currency' AS currency,
                     try_cast(payload::JSON->>'$.totalAmount' AS DECIMAL(18, 2)) AS amount
              FROM processed WHERE event_type = 'order.created')
        GROUP BY dt, currency""",
}


def run(config: LakehouseConfig, domain: str, day: dt.date, run_id: str) -> PeerRun:
    """The events day landing -> raw -> processed (+ quarantine) -> curated, timed per stage."""
    result, key = PeerRun(), config.token_key()
    if "'" in key:
        raise ValueError("the peer embeds the token key in SQL: a key with a quote is not supported")
    root = f"{config.root}/peer/{domain}"
    options = config.storage_options
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def write(name: str, table: pa.Table) -> None:
        write_deltalake(
            f"{root}/{name}", table, partition_by=["dt"], mode="overwrite", storage_options=options
        )

    def read(name: str):
        return DeltaTable(f"{root}/{name}", storage_options=options).to_pyarrow_dataset()

    started = time.perf_counter()
    parts = [
        part
        for uri in landing.landing_files(config, domain, [day], "events")[day]
        for part in landing.numbered_lines(day, uri, [storage.read_bytes(config, uri)])
    ]
    lines = pa.concat_tables([p for p in parts if isinstance(p, pa.Table)])
    refused = [p for p in parts if not isinstance(p, pa.Table)]
    now = pa.scalar(dt.datetime.now(dt.UTC).replace(tzinfo=None), pa.timestamp("us"))
    raw = lines.append_column("ingested_at", pa.repeat(now, lines.num_rows)).append_column(
        "run_id", pa.repeat(pa.scalar(run_id), lines.num_rows)
    )
    write("raw", raw)
    result.seconds["raw"] = time.perf_counter() - started
    result.counts["raw"] = raw.num_rows + len(refused)

    started = time.perf_counter()
    con.register("raw", read("raw"))
    con.sql(f"CREATE TEMP TABLE output AS {_processed_sql(key)}")
    quarantine = (
        con.sql(
            "SELECT dt, source_file, line_number, quarantine_reason AS reason, "
            "to_json(struct_pack(line)) AS record FROM output WHERE quarantine_reason IS NOT NULL"
        )
        .arrow()
        .read_all()
    )
    write("quarantine", quarantine)
    accepted = con.sql("SELECT count(*) FROM output WHERE quarantine_reason IS NULL").fetchall()[0][0]
    processed = con.sql(_accepted_sql(key)).arrow().read_all()
    write("processed", processed)
    con.register("processed", read("processed"))
    failed = con.sql(CHECKS_SQL).fetchall()[0]
    if any(failed):
        raise AssertionError(f"peer: processed rows fail the events checks: {failed}")
    result.seconds["processed"] = time.perf_counter() - started
    result.counts.update(
        processed=processed.num_rows,
        quarantined=quarantine.num_rows,
        duplicates=accepted - processed.num_rows,
    )

    started = time.perf_counter()
    for name, sql in CURATED_SQL.items():
        table = con.sql(sql).arrow().read_all()
        write(name, table)
        result.counts[name] = table.num_rows
    result.seconds["curated"] = time.perf_counter() - started
    result.seconds["end to end"] = sum(result.seconds.values())
    return result
