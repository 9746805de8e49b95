"""Transforms every domain shares: raw ingestion metadata, quarantine split, residency, de-duplication,
protection of personal data. Pure functions; the factory applies them as declared."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.datasets import ENVELOPE_VERSION, QUARANTINE_REASON, QUARANTINE_REASONS, Dataset, Protection

LINE_ORDER = ("source_file", "line_number")
REASONS_DDL = "array<string>"  # the quarantine's `reasons` text, parsed (Sail's Delta writer refuses lists)
# A row that cannot be read carries this reason alone: every other rule would only echo it.
UNREADABLE = "malformed_json"


def parsed_lines(raw: DataFrame, fields: Iterable[str], into: str) -> DataFrame:
    """The raw lines (`dt`, LINE_ORDER, `line`) with their `fields` as JSON text (an object or array value
    keeps its text) in the struct `into`, and `_malformed`: the line is not one JSON object.

    A struct, because Sail looks fields up in a parsed map at ~2 s per field and 1M lines (iot, 5M
    readings, 8 fields: 22 s as a map, 4 s as a struct); a field not listed fails the plan, not the row.
    A struct has no null for a line that is not an object (its fields are null, as for `{}`), so the
    lines without any field are parsed again as a map, which is null exactly then."""
    schema = T.StructType([T.StructField(name, T.StringType()) for name in dict.fromkeys(fields)])
    parsed = raw.select("dt", *LINE_ORDER, "line", F.from_json("line", schema).alias(into))
    absent = functools.reduce(
        lambda a, b: a & b, [F.col(into).getField(f.name).isNull() for f in schema.fields]
    )
    malformed = F.when(absent, F.from_json("line", "map<string,string>").isNull()).otherwise(F.lit(False))
    return parsed.withColumn("_malformed", malformed)


def raw_lines(lines: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Every landing line, unparsed, with ingestion metadata."""
    return lines.select(
        "dt",
        "source_file",
        "line_number",
        "line",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(run_id).alias("run_id"),
    )


def refused_lines(refused: DataFrame, run_id: str, quarantined_at: dt.datetime) -> DataFrame:
    """Landing lines and files the raw layer could not keep as text, in the shared quarantine schema."""
    return refused.select(
        "dt",
        "source_file",
        "line_number",
        "reason",
        F.to_json(F.array("reason")).alias("reasons"),
        "record",
        F.lit(run_id).alias("run_id"),
        F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"),
    )


def first_reason(*rules: tuple[Column, str]) -> Column:
    """The name of the first rule whose condition holds, or null."""
    return F.coalesce(
        *[F.when(condition, F.lit(name)) for condition, name in rules], F.lit(None).cast("string")
    )


def rule_reasons(*rules: tuple[Column, str]) -> list[Column]:
    """The row's `quarantine_reason` (the first rule it breaks; null: accepted) and `quarantine_reasons`
    (every rule it breaks, in the rules' order; empty: accepted), to select next to the typed columns."""
    every = F.filter(
        F.array(*[F.when(condition, F.lit(name)) for condition, name in rules]), lambda name: name.isNotNull()
    )
    every = F.when(F.array_contains(every, UNREADABLE), F.array(F.lit(UNREADABLE))).otherwise(every)
    return [first_reason(*rules).alias(QUARANTINE_REASON), every.cast(REASONS_DDL).alias(QUARANTINE_REASONS)]


def _no_reasons() -> Column:
    return F.array().cast(REASONS_DDL)


def _current_reasons(df: DataFrame) -> tuple[Column, Column]:
    """The row's first reason and every reason so far (a transform may give the first one only)."""
    first = F.col(QUARANTINE_REASON) if QUARANTINE_REASON in df.columns else F.lit(None).cast("string")
    every = (
        F.col(QUARANTINE_REASONS)
        if QUARANTINE_REASONS in df.columns
        else F.when(first.isNotNull(), F.array(first)).otherwise(_no_reasons())
    )
    return first, every


def _add_reason(df: DataFrame, reason: Column, leading: bool) -> DataFrame:
    """Mark rows with `reason` (null: the rule holds) in both reason columns, ahead of or after the earlier
    reasons; a row that cannot be read keeps its one reason."""
    first, every = _current_reasons(df)
    reason = F.when(~F.array_contains(every, UNREADABLE), reason)
    added = F.when(reason.isNotNull(), F.array(reason)).otherwise(_no_reasons())
    return df.withColumns(
        {
            QUARANTINE_REASON: F.coalesce(reason, first) if leading else F.coalesce(first, reason),
            QUARANTINE_REASONS: (F.concat(added, every) if leading else F.concat(every, added)).cast(
                REASONS_DDL
            ),
        }
    )


def require_region(df: DataFrame, region_column: str, allowed: Iterable[str]) -> DataFrame:
    """Mark rows whose region is not allowed for the dataset (after their earlier reasons)."""
    allowed = list(allowed)
    reason = F.when(
        F.col(region_column).isNull() | ~F.col(region_column).isin(*allowed),
        F.concat(F.lit("region_not_allowed:"), F.coalesce(F.col(region_column), F.lit("null"))),
    )
    return _add_reason(df, reason, leading=False)


def require_version(df: DataFrame, known_majors: Iterable[str]) -> DataFrame:
    """Mark rows whose envelope version has a major version the dataset does not know. This reason comes
    first: the other rules judge a structure only a known version has (a row without a version keeps them)."""
    version = F.col(ENVELOPE_VERSION).cast("string")
    reason = F.when(
        version.isNotNull() & ~F.substring_index(F.trim(version), ".", 1).isin(*known_majors),
        F.concat(F.lit("unknown_version:"), F.substring(version, 1, 40)),
    )
    return _add_reason(df, reason, leading=True)


def derive(dataset: Dataset, inputs: Mapping[str, DataFrame]) -> DataFrame:
    """The transform's output (one upstream: positional; several: by name) with the row rules the
    declaration implies: residency and known envelope versions."""
    transform = dataset.transform
    assert transform is not None, f"{dataset.path} has no transform (a raw dataset is ingested, not derived)"
    output = transform(*inputs.values()) if len(inputs) == 1 else transform(**inputs)
    if dataset.allowed_regions:
        assert dataset.region_column is not None  # the declaration requires it with allowed_regions
        output = require_region(output, dataset.region_column, dataset.allowed_regions)
    if dataset.envelope_versions:
        output = require_version(output, dataset.envelope_versions)
    return output


def written_schema(dataset: Dataset, output: DataFrame) -> T.StructType:
    """The schema the dataset's table receives from `output`: accepted rows, protected (no key changes a
    type)."""
    rows = accepted_rows(output)
    return (protect(rows, dataset.personal_data, "") if dataset.personal_data else rows).schema


def accepted_rows(df: DataFrame) -> DataFrame:
    """Rows without a reason, without the reason and the `_`-prefixed quarantine-only columns."""
    if QUARANTINE_REASON not in df.columns:
        return df
    reasons = (QUARANTINE_REASON, QUARANTINE_REASONS)
    keep = [c for c in df.columns if c not in reasons and not c.startswith("_")]
    return df.where(F.col(QUARANTINE_REASON).isNull()).select(*keep)


def quarantine_records(df: DataFrame, run_id: str, quarantined_at: dt.datetime) -> DataFrame:
    """Rejected rows in the one quarantine schema every dataset shares: the first reason, every reason (a
    JSON array: Delta tables here hold no nested types, see REASONS_DDL), the whole row kept as JSON."""
    first, every = _current_reasons(df)
    df = df.withColumns({QUARANTINE_REASON: first, QUARANTINE_REASONS: every})
    payload = [c for c in df.columns if c not in ("dt", QUARANTINE_REASON, QUARANTINE_REASONS)]
    optional = {name: (F.col(name) if name in df.columns else F.lit(None)) for name in LINE_ORDER}
    return df.where(F.col(QUARANTINE_REASON).isNotNull()).select(
        "dt",
        optional["source_file"].cast("string").alias("source_file"),
        optional["line_number"].cast("int").alias("line_number"),
        F.col(QUARANTINE_REASON).alias("reason"),
        F.to_json(F.col(QUARANTINE_REASONS)).alias("reasons"),
        F.to_json(F.struct(*[F.col(c).alias(c.lstrip("_")) for c in payload])).alias("record"),
        F.lit(run_id).alias("run_id"),
        F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"),
    )


def join_null_safe(left: DataFrame, right: DataFrame, on: Sequence[str], how: str) -> DataFrame:
    """`left` joined with `right` on equal or both-null `on` columns (a window's partition groups nulls
    too); `right`'s columns come prefixed with `_right_`."""
    prefixed = right.select(*[F.col(c).alias(f"_right_{c}") for c in right.columns])
    condition = functools.reduce(
        lambda a, b: a & b, [left[c].eqNullSafe(prefixed[f"_right_{c}"]) for c in on]
    )
    return left.join(prefixed, condition, how)


def repeated_keys(df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """The values of `columns` that more than one row of `df` holds (nulls group together), found by
    hashing: de-duplication and the uniqueness checks both start from them."""
    return df.groupBy(*columns).count().where(F.col("count") > 1).select(*columns)


def first_lines(df: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Per partition and key that occurs more than once, the source file and line of its first row
    (`dt`, keys, `first_file`, `first_line`). Hashing finds the repeated keys and only their rows are
    sorted: a window over every row sorts the whole day (iot, 5M readings, 12,500 repeats: 1.7 s here,
    16 s and 1.6 GB more for the window)."""
    missing = [c for c in LINE_ORDER if c not in df.columns]
    if missing:
        raise ValueError(f"de-duplication keeps the first row by {LINE_ORDER}; missing columns {missing}")
    group = ["dt", *keys]
    rows = join_null_safe(df.select(*group, *LINE_ORDER), repeated_keys(df, group), group, "left_semi")
    order = F.row_number().over(Window.partitionBy(*group).orderBy(*LINE_ORDER))
    return (
        rows.withColumn("_order", order)
        .where(F.col("_order") == 1)
        .select(*group, F.col("source_file").alias("first_file"), F.col("line_number").alias("first_line"))
    )


def without_repeats(df: DataFrame, firsts: DataFrame, keys: Sequence[str]) -> DataFrame:
    """`df` without the rows of a repeated key (`firsts`, from `first_lines`) that come after its first
    line. Rows that share the key's first line all stay: nothing is dropped by a guess (the key's
    uniqueness check then fails)."""
    joined = join_null_safe(df, firsts.withColumn("repeated", F.lit(True)), ["dt", *keys], "left")
    at_first = F.col("source_file").eqNullSafe(F.col("_right_first_file")) & F.col("line_number").eqNullSafe(
        F.col("_right_first_line")
    )
    return joined.where(F.col("_right_repeated").isNull() | at_first).select(*df.columns)


def deduplicate(df: DataFrame, keys: Sequence[str]) -> DataFrame:
    """One row per key and partition: the first by source file and line."""
    return without_repeats(df, first_lines(df, keys), keys)


def tokenize(column: Column, key: str) -> Column:
    """Keyed, deterministic hash: the same value always gives the same token, so joins still work."""
    return F.when(column.isNull(), F.lit(None).cast("string")).otherwise(
        F.sha2(F.concat(F.lit(key), F.lit("|"), column.cast("string")), 256)
    )


def mask(column: Column) -> Column:
    """Enough left to recognise, not to identify: a***@example.com, 10.1.x.x, A***."""
    value = column.cast("string")
    return (
        F.when(value.isNull(), F.lit(None).cast("string"))
        .when(
            value.contains("@"),
            F.concat(F.substring(value, 1, 1), F.lit("***@"), F.substring_index(value, "@", -1)),
        )
        .when(
            value.rlike(r"^\d{1,3}(\.\d{1,3}){3}$"), F.concat(F.substring_index(value, ".", 2), F.lit(".x.x"))
        )
        .otherwise(F.concat(F.substring(value, 1, 1), F.lit("***")))
    )


def _json_members(json_text: Column, field: str, protection: Callable[[Column], Column]) -> Column:
    """The JSON text with every `"<field>": value` member, at any depth, holding the protected value instead
    (a string; string and number values are protected, others left as they are).

    Each member's raw value is replaced by exact text; longest first, so a number that begins another
    is not replaced inside it. The raw value is decoded (JSON escapes) before it is protected, so a token
    equals the token of the same value in its own column.
    """
    if not re.fullmatch(r"\w+", field):
        raise ValueError(f"a JSON field to protect is a plain name, not {field!r}")
    name = f'"{field}":'
    normalized = F.regexp_replace(json_text, f'"{field}"\\s*:\\s*', name)
    raws = F.sort_array(
        F.regexp_extract_all(normalized, F.lit(f'{name}("(?:[^"\\\\]|\\\\.)*"|-?[0-9][0-9.eE+-]*)'), 1),
        asc=False,
    )

    def protected(raw: Column) -> Column:
        value = F.get_json_object(F.concat(F.lit('{"v":'), raw, F.lit("}")), "$.v")
        return F.concat(F.lit(f'{name}"'), protection(value), F.lit('"'))

    return F.aggregate(
        raws, normalized, lambda text, raw: F.replace(text, F.concat(F.lit(name), raw), protected(raw))
    )


def protect(
    df: DataFrame, personal_data: Mapping[str, Protection], key: str, rows: Column | None = None
) -> DataFrame:
    """Apply each personal-data column's declared protection (to the `rows` selected, when given).

    A key `column.field` declares a field inside the JSON text of `column`: each of its values, at any depth,
    is protected in place (a tokenized id keeps the token its own column gets, so joins still work).
    """
    how_to = {Protection.TOKENIZE: lambda value: tokenize(value, key), Protection.MASK: mask}
    columns: dict[str, Column] = {}
    for name, how in personal_data.items():
        column, _, field = name.partition(".")
        if column not in df.columns:
            raise ValueError(f"personal-data column declared but not produced: {column}")
        current = columns.get(column, F.col(column))
        columns[column] = _json_members(current, field, how_to[how]) if field else how_to[how](current)
    if rows is not None:
        columns = {name: F.when(rows, value).otherwise(F.col(name)) for name, value in columns.items()}
    return df.withColumns(columns)
