"""The quality gate of a step (write-audit-publish): the factory stages the rows a step would publish,
the gate validates exactly those (one Great Expectations validation on the engine's DataFrame), turns
each rule's result into a Dagster asset check result and measures the partitions; only then, when no
blocking check failed, does the factory commit the dataset, its quarantine and the metrics table.

Checks with `error` severity are blocking `AssetCheckSpec`s: when one fails, nothing of the step is
committed, its would-be partitions are kept for review, and the step fails naming the checks, so
downstream assets of the same run (or backfill) do not start. `warn` checks are recorded and publish.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.connect.dataframe import DataFrame as ConnectDataFrame

from lakehouse import catalog, delta
from lakehouse.datasets import Classification, Dataset
from lakehouse.delta import WriteResult
from lakehouse.lake import Lake, TableVersion
from quality import metrics, suites
from quality.rules import VALIDITY_TARGET, Rule, Severity
from transforms.common import join_null_safe, repeated_keys

ACCEPTED_SHARE = "accepted_share"  # validity target on input: accepted / (accepted + quarantined)
ROWS_RECONCILE = "rows_reconcile"  # input = accepted + quarantined + duplicates removed, per partition
SEVERITY = {Severity.ERROR: dg.AssetCheckSeverity.ERROR, Severity.WARN: dg.AssetCheckSeverity.WARN}
SENSITIVE = (Classification.CONFIDENTIAL, Classification.RESTRICTED)


def warm_up() -> None:
    """Import Great Expectations in the background, once per process: it takes seconds, which a gate
    would otherwise spend inside its step before validating (a step that needs it meanwhile waits on
    Python's import lock, so it never sees half a module).

    Gated steps call it as they begin, so that the import overlaps their engine query. Begun in the raw
    step, it held the GIL the landing staging threads need: 3 s more of an events day's raw step."""
    if not _warming.is_set():
        _warming.set()
        threading.Thread(target=importlib.import_module, args=("quality.expectations",), daemon=True).start()


_warming = threading.Event()


def _reconciles(dataset: Dataset) -> bool:
    return dataset.has_quarantine and dataset.upstream[0].startswith("raw/")


def check_specs(dataset: Dataset) -> list[dg.AssetCheckSpec]:
    """One check per rule of the dataset's suite (blocking when its severity is error), plus the
    quarantine's checks. Raw datasets have none: they keep every line as received."""
    if dataset.layer == "raw":
        return []
    specs = [
        dg.AssetCheckSpec(
            rule.name,
            asset=dataset.key_path,
            blocking=rule.severity is Severity.ERROR,
            description=f"{rule.dimension.value}: {rule.threshold}",
        )
        for rule in suites.suite_rules(dataset)
    ]
    if dataset.has_quarantine:
        specs.append(
            dg.AssetCheckSpec(
                ACCEPTED_SHARE,
                asset=dataset.key_path,
                blocking=False,
                description=f"validity: at least {VALIDITY_TARGET:.0%} of input rows accepted",
            )
        )
    if _reconciles(dataset):
        specs.append(
            dg.AssetCheckSpec(
                ROWS_RECONCILE,
                asset=dataset.key_path,
                blocking=True,
                description="per partition: input rows = accepted + quarantined + duplicates removed",
            )
        )
    return specs


def reference_deps(dataset: Dataset) -> list[dg.AssetKey]:
    """Datasets read by the suite's referential rules that are not upstream already: built first."""
    return [
        dg.AssetKey(path.split("/"))
        for path in suites.reference_paths(dataset)
        if path not in dataset.upstream
    ]


@dataclass
class Outcome:
    status: str  # passed | warning | failed
    results: list[dg.AssetCheckResult]
    measured: list[metrics.PartitionMetrics]
    docs_url: str | None = None
    failed: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)  # failed checks that stop the publication
    duplicates: dict[dt.date, int] = field(default_factory=dict)  # rows de-duplication removed, per partition
    metrics_rows: list[tuple] = field(default_factory=list)  # rows of the metrics table (metrics.SCHEMA)
    seconds: float = 0.0  # what the gate added to the step

    @property
    def summary(self) -> str:
        passed = sum(r.passed for r in self.results)
        return f"{passed}/{len(self.results)} checks passed" + (
            f"; failed: {', '.join(self.failed)}" if self.failed else ""
        )


def _sensitive(dataset: Dataset, rule: Rule) -> bool:
    """Does the rule read personal, confidential or restricted columns (failing values shown masked)?"""
    return any(c in dataset.personal_data or dataset.classification_of(c) in SENSITIVE for c in rule.columns)


def _shown(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items())
    return "null" if value is None else str(value)


IN_MEMORY_ROWS = 10_000  # staged outputs up to this many rows are validated from memory


def in_memory_when_small(rows: DataFrame) -> DataFrame:
    """The staged rows as a local relation when they are few (a curated aggregate): each of the suite's
    queries then reads them from the request rather than listing and opening the staged Parquet again.
    The same engine validates the same rows and types either way."""
    # the rows and their schema in one round trip: `toArrow` asks for the schema first, and resolving a
    # plan over staged Parquet lists its files (curated gates: 30 of ~200 ms)
    head, schema = cast(ConnectDataFrame, rows.limit(IN_MEMORY_ROWS + 1))._to_table()
    return (
        rows
        if head.num_rows > IN_MEMORY_ROWS
        else rows.sparkSession.createDataFrame(head, schema=schema or rows.schema)
    )


def flagged(
    lake: Lake, df: DataFrame, rules: Sequence[Rule], days: Sequence[dt.date], fetch_repeated: bool = True
) -> DataFrame:
    """`df` with the flag column of every rule that looks beyond its row (`Rule.flag_column`), so that each
    of them is a per-row expectation (`fetch_repeated`: fetch the repeated keys once when few, for each
    query of the suite to look up rather than aggregate `df` again)."""
    return _with_repeated_keys(_with_references(lake, df, rules, days), rules, fetch_repeated)


def _with_references(lake: Lake, df: DataFrame, rules: Sequence[Rule], days: Sequence[dt.date]) -> DataFrame:
    """Flag each row's referenced key as found (True) or not (null) in the referenced dataset, same `dt`."""
    for rule in rules:
        if rule.reference is None:
            continue
        target, column = rule.reference
        keys = in_memory_when_small(  # fetched once: a registry, looked up by every query of the suite
            lake.read(target, days)[0].select("dt", F.col(column).alias(rule.column)).distinct()
        )
        df = df.join(keys.withColumn(rule.flag_column, F.lit(True)), ["dt", rule.column], "left")
        # a missing value is the completeness rules' business, not a broken reference
        df = df.withColumn(rule.flag_column, F.col(rule.column).isNull() | F.col(rule.flag_column))
    return df


_UNQUOTED = (T.NumericType, T.BooleanType)  # types whose text holds no quote and no ", "


def _key_text(df: DataFrame, key: Sequence[str]) -> F.Column:
    """The key as text that reads like a SQL condition and tells keys apart (`dt='2024-01-02', id='a''b',
    n=1, m=null`): values other than numbers and booleans are quoted, their quotes doubled, so one text
    is one key and the metrics count distinct keys by their text."""
    types = {field.name: field.dataType for field in df.schema.fields}

    def shown(c: str) -> F.Column:
        value = F.col(c).cast("string")
        if not isinstance(types[c], _UNQUOTED):
            value = F.concat(F.lit("'"), F.regexp_replace(value, "'", "''"), F.lit("'"))
        return F.concat(F.lit(f"{c}="), F.coalesce(value, F.lit("null")))

    return F.concat_ws(", ", *[shown(c) for c in key])


def _with_repeated_keys(df: DataFrame, rules: Sequence[Rule], fetch: bool) -> DataFrame:
    """Flag the rows whose key repeats with the key as text (`_key_text`; nulls compare equal; a row with
    no key value is not flagged), found by one hash aggregation: Great Expectations' own uniqueness
    checks are a window over every row, twice (iot, 5M readings: 7 s of an 8 s gate)."""
    for rule in rules:
        if rule.kind != "unique":
            continue
        key = list(rule.columns)
        some_value = functools.reduce(lambda a, b: a | b, [F.col(c).isNotNull() for c in key])
        text = _key_text(df, key)
        repeated = repeated_keys(df.where(some_value), key).select(*key, text.alias(rule.flag_column))
        joined = join_null_safe(df, in_memory_when_small(repeated) if fetch else repeated, key, "left")
        df = joined.select(*df.columns, F.col(f"_right_{rule.flag_column}").alias(rule.flag_column))
    return df


def _result(dataset: Dataset, rule: Rule, outcome, docs_url: str | None) -> dg.AssetCheckResult:
    found = outcome.result or {}  # samples of sensitive rules come masked from `expectations.validate`
    raised = (outcome.exception_info or {}).get("raised_exception")
    metadata: dict[str, Any] = {
        "rule": rule.name,
        "dimension": rule.dimension.value,
        "severity": rule.severity.value,
        "threshold": rule.threshold,
        "mostly": rule.mostly,
        "unexpected_count": int(found.get("unexpected_count") or 0),
        "unexpected_percent": round(float(found.get("unexpected_percent") or 0.0), 4),
        "rows_validated": int(found.get("element_count") or 0),
        "failing_sample": [_shown(v) for v in found.get("partial_unexpected_list") or []],
    }
    if "observed_value" in found:
        metadata["observed_value"] = str(found["observed_value"])
    elif metadata["rows_validated"]:
        metadata["observed_value"] = round(1 - metadata["unexpected_percent"] / 100, 6)
    if raised:
        metadata["error"] = str(outcome.exception_info.get("exception_message"))
    if docs_url:
        metadata["data_docs"] = dg.MetadataValue.url(docs_url)
    if raised:
        why = metadata["error"]
    elif rule.kind == "of_type":
        why = f"observed {metadata.get('observed_value')}"
    else:
        why = (
            f"{metadata['unexpected_count']} of {metadata['rows_validated']} rows "
            f"({metadata['unexpected_percent']}%) break it"
        )
    return dg.AssetCheckResult(
        asset_key=dataset.key_path,
        check_name=rule.name,
        passed=bool(outcome.success),
        severity=SEVERITY[rule.severity],
        metadata=metadata,
        description=f"{rule.dimension.value}: {rule.threshold}; {why}",
    )


def _quarantine_results(
    dataset: Dataset,
    days: Sequence[dt.date],
    published: Mapping[dt.date, int],
    held: metrics.Quarantined,
    duplicates: Mapping[dt.date, int],
    inputs: dict[dt.date, int] | None,
) -> list[dg.AssetCheckResult]:
    accepted, quarantined = sum(published.values()), sum(held.rows.values())
    share = accepted / (accepted + quarantined) if accepted + quarantined else 1.0
    results = [
        dg.AssetCheckResult(
            asset_key=dataset.key_path,
            check_name=ACCEPTED_SHARE,
            passed=share >= VALIDITY_TARGET,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "observed_value": round(share, 6),
                "threshold": VALIDITY_TARGET,
                "unexpected_count": quarantined,
                "unexpected_percent": round(100 * (1 - share), 4),
                "quarantine": dataset.quarantine_path,
            },
        )
    ]
    if inputs is not None:
        per_day = {
            day.isoformat(): {
                "input": inputs.get(day, 0),
                "accepted": published.get(day, 0),
                "quarantined": held.rows.get(day, 0),
                "duplicates": duplicates.get(day, 0),
            }
            for day in days
        }
        off = {
            day: c
            for day, c in per_day.items()
            if c["input"] != c["accepted"] + c["quarantined"] + c["duplicates"]
        }
        results.append(
            dg.AssetCheckResult(
                asset_key=dataset.key_path,
                check_name=ROWS_RECONCILE,
                passed=not off,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "observed_value": f"{len(days) - len(off)}/{len(days)} partitions reconcile",
                    "threshold": "input = accepted + quarantined + duplicates, every partition",
                    "unexpected_count": len(off),
                    "partitions": per_day,
                },
            )
        )
    return results


def audited_columns(dataset: Dataset, columns: Sequence[str]) -> list[str]:
    """The columns the dataset's suite reads: what a step stages to be audited."""
    rules = suites.suite_rules(dataset)
    missing = sorted({c for rule in rules for c in rule.columns if c not in columns})
    if missing:
        raise ValueError(f"the suite of {dataset.path} names columns the dataset does not have: {missing}")
    return list(dict.fromkeys(["dt", *(c for rule in rules for c in rule.columns)]))


def evaluate(
    lake: Lake,
    dataset: Dataset,
    days: Sequence[dt.date],
    rows: DataFrame,
    run_id: str,
    held: metrics.Quarantined | None = None,
    deduplicated_from: Mapping[dt.date, int] | None = None,
    upstream: Sequence[tuple[str, TableVersion]] = (),
) -> Outcome:
    """Validate and measure the staged `rows` the step would publish, before any of them is committed
    (`deduplicated_from`: accepted rows per partition before de-duplication, when the step de-duplicates)."""
    from quality import expectations  # Great Expectations loads in seconds: only when a step validates

    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    rules = suites.suite_rules(dataset)
    audited = rows.select(*audited_columns(dataset, rows.columns))
    in_memory = in_memory_when_small(audited)
    if in_memory is audited:
        validated = flagged(lake, audited, rules, days)
    else:  # few rows (a curated aggregate): flagged once, so that the suite's queries read them as they are
        validated = in_memory_when_small(flagged(lake, in_memory, rules, days, fetch_repeated=False))
    result, docs_url = expectations.validate(
        validated,
        catalog.dataset_id(dataset.path),
        rules,
        lake.config.state_dir,
        run_id,
        lambda rule: _sensitive(dataset, rule),
    )
    by_rule = {(r.expectation_config.meta or {})["rule"]: r for r in result.results if r.expectation_config}
    results = [_result(dataset, rule, by_rule[rule.name], docs_url) for rule in rules]
    key = [c for c in dataset.primary_key if c != "dt"]
    measured = metrics.measure(validated, rules, ["dt", *key] if key else [], days, held, now)
    published = {m.day: m.rows for m in measured}
    duplicates = {day: n - published.get(day, 0) for day, n in (deduplicated_from or {}).items()}
    if held is not None:
        versions = dict(upstream)
        inputs = (
            lake.rows_per_partition(dataset.upstream[0], days, versions[dataset.upstream[0]])
            if _reconciles(dataset)
            else None
        )
        results += _quarantine_results(dataset, days, published, held, duplicates, inputs)
    failed = [str(r.check_name) for r in results if not r.passed]
    blocking = [
        str(r.check_name) for r in results if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR
    ]
    status = "failed" if blocking else "warning" if failed else "passed"
    table = metrics.as_rows(dataset, measured, run_id, len(results) - len(failed), len(failed), status, now)
    return Outcome(
        status,
        results,
        measured,
        docs_url,
        failed,
        blocking,
        duplicates,
        table,
        round(time.perf_counter() - started, 3),
    )


def under_review(outcome: Outcome, review: str) -> list[dg.AssetCheckResult]:
    """The check results of a refused publication, the failed ones pointing to where its would-be rows
    wait for review."""
    return [
        r
        if r.passed
        else dg.AssetCheckResult(
            asset_key=r.asset_key,
            check_name=r.check_name,
            passed=r.passed,
            severity=r.severity,
            metadata={**r.metadata, "review_location": dg.MetadataValue.path(review)},
            description=r.description,
        )
        for r in outcome.results
    ]


def publish_metrics(
    lake: Lake, dataset: Dataset, days: Sequence[dt.date], outcome: Outcome
) -> tuple[WriteResult, T.StructType]:
    """Commit the measured partitions to the dataset's metrics table (after the dataset itself)."""
    frame = lake.spark.createDataFrame(outcome.metrics_rows, metrics.SCHEMA)
    written = lake.write(metrics.metrics_path(dataset), frame, days, delta.SchemaPolicy.ADDITIVE)
    return written, frame.schema
