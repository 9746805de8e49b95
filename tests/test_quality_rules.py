"""Each table rule is declared once and rendered twice: as a Great Expectations expectation (the check's
verdict) and as a Spark condition (the metrics). Both must count the same failing rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import functions as F

from lakehouse.lake import Lake
from quality import expectations, gate, metrics
from quality.rules import CURRENCY_CODE, UUID, between, holds, matches, one_of, required, typed, unique

DAY = dt.date(2024, 1, 2)
ROWS = [  # id, currency, amount, quantity, ok
    ("7f1c1f2e-1d2b-4c3a-9e8f-0a1b2c3d4e5f", "EUR", 10.0, 1, True),
    ("7f1c1f2e-1d2b-4c3a-9e8f-0a1b2c3d4e60", "usd", 0.0, 0, True),  # lower-case code, zero amount, no units
    ("not-a-uuid", "GBP", -1.0, 3, False),
    ("not-a-uuid", None, None, 2, None),  # duplicate id, missing values
]
RULES = [
    *required("currency"),
    unique("dt", "id"),
    between("amount", 0, strict_min=True, name="amount_positive"),
    between("quantity", 1, name="quantity_at_least_one"),
    one_of("currency", ("EUR", "USD", "GBP")),
    matches("currency", CURRENCY_CODE, "currency_code"),
    matches("id", UUID, "uuid"),
    holds("ok", mostly=1.0),
    typed("amount", "DoubleType"),
]
FAILING = {
    "currency_present": 1,
    "id_unique_per_day": 2,
    "amount_positive": 2,
    "quantity_at_least_one": 1,
    "currency_allowed": 1,
    "currency_is_currency_code": 1,
    "id_is_uuid": 2,
    "ok": 1,
    "amount_is_double": 0,
}


def _flagged(df):
    return gate.flagged(Lake(), df, RULES, [DAY])  # no references: the lake is not read


def test_expectations_and_conditions_count_the_same_failures(spark, tmp_path):
    df = spark.createDataFrame(
        [(DAY, *row) for row in ROWS],
        "dt date, id string, currency string, amount double, quantity int, ok boolean",
    )
    result, docs = expectations.validate(_flagged(df), "processed.qa.rules", RULES, tmp_path, "run-1")
    found = {r.expectation_config.meta["rule"]: r.result.get("unexpected_count", 0) for r in result.results}
    assert found == FAILING
    assert {r.expectation_config.meta["rule"]: r.success for r in result.results}["amount_is_double"]
    for rule in RULES:
        condition = rule.passes()
        if condition is not None:
            assert df.where(~F.coalesce(condition, F.lit(False))).count() == FAILING[rule.name], rule.name
    assert (
        docs and docs.startswith("file://") and (tmp_path / "quality" / "data_docs" / "index.html").is_file()
    )


def test_a_small_staged_output_is_validated_from_memory_with_the_same_verdicts(spark, tmp_path, monkeypatch):
    from pyspark.sql.connect.plan import LocalRelation

    rows = spark.createDataFrame(
        [(DAY, *row) for row in ROWS],
        "dt date, id string, currency string, amount double, quantity int, ok boolean",
    )
    rows.write.parquet(str(tmp_path / "staged"))
    staged = spark.read.schema(rows.schema).parquet(str(tmp_path / "staged"))
    in_memory = gate.in_memory_when_small(staged)
    monkeypatch.setattr(gate, "IN_MEMORY_ROWS", len(ROWS) - 1)
    assert gate.in_memory_when_small(staged) is staged  # one row too many: validated where it was staged
    assert isinstance(in_memory._plan, LocalRelation) and in_memory.schema == staged.schema
    for frame, run in ((in_memory, "run-memory"), (staged, "run-staged")):
        result, _ = expectations.validate(_flagged(frame), "processed.qa.rules", RULES, tmp_path, run)
        found = {
            r.expectation_config.meta["rule"]: r.result.get("unexpected_count", 0) for r in result.results
        }
        assert found == FAILING, run


def test_data_docs_keep_the_pages_of_other_processes(spark, tmp_path):
    """A new process (a fresh GX context) adds its page to the index, which keeps every page: GX's own index
    builder deleted the pages whose results its in-memory stores did not hold."""
    df = spark.createDataFrame(
        [(DAY, *row) for row in ROWS],
        "dt date, id string, currency string, amount double, quantity int, ok boolean",
    )
    _, first = expectations.validate(_flagged(df), "processed.qa.rules", RULES, tmp_path, "run-b")
    expectations._context.cache_clear()  # what the next process starts with
    expectations._validation.cache_clear()
    _, second = expectations.validate(_flagged(df), "processed.qa.rules", RULES, tmp_path, "run-a")
    pages = [Path(urlparse(url).path) for url in (first, second)]
    assert first != second and all(page.is_file() for page in pages)
    index_file = tmp_path / "quality" / "data_docs" / "index.html"
    index = index_file.read_text()
    assert index.count("href=") == 2
    assert index.index("run-b") < index.index("run-a")  # appended as validated, whatever the runs' names
    assert "flex-direction:column-reverse" in index  # and shown newest first
    # an index of another layout (an older release's) is rebuilt from the pages on disk, by run time
    index_file.write_text("<!doctype html><title>Data Docs</title><h1>Validations</h1><ul>\n</ul>\n")
    expectations.validate(_flagged(df), "processed.qa.rules", RULES, tmp_path, "run-0")
    index = index_file.read_text()
    assert index.startswith(expectations.INDEX_HEAD) and index.count("href=") == 3
    assert index.index("run-b") < index.index("run-a") < index.index("run-0")


def test_rows_of_a_repeated_key_are_flagged_with_the_key(spark, tmp_path):
    """Every row of a repeated key fails the uniqueness check and shows its key; keys with nulls compare
    equal, a row with no key value at all is not checked (Great Expectations' compound uniqueness). A
    column may be called `key`."""
    rule = unique("dt", "device", "key")
    df = spark.createDataFrame(
        [
            (DAY, "d-1", 1),
            (DAY, "d-1", 1),  # repeated
            (DAY, "d-1", 2),
            (DAY, "d-2", None),
            (DAY, "d-2", None),  # repeated, with a null
            (DAY, "d-3", None),
            (None, None, None),
            (None, None, None),  # no key value: not checked
        ],
        "dt date, device string, key int",
    )
    flagged = gate.flagged(Lake(), df, [rule], [DAY])
    assert sorted(
        r[0] for r in flagged.where(F.col(rule.flag_column).isNotNull()).select(rule.flag_column).collect()
    ) == [
        "dt='2024-01-02', device='d-1', key=1",
        "dt='2024-01-02', device='d-1', key=1",
        "dt='2024-01-02', device='d-2', key=null",
        "dt='2024-01-02', device='d-2', key=null",
    ]
    result, _ = expectations.validate(flagged, "processed.qa.repeats", [rule], tmp_path, "run-repeats")
    (outcome,) = result.results
    assert not outcome.success and outcome.result["unexpected_count"] == 4
    assert set(outcome.result["partial_unexpected_list"]) == {
        "dt='2024-01-02', device='d-1', key=1",
        "dt='2024-01-02', device='d-2', key=null",
    }


def test_uniqueness_counts_each_repeated_key_once_however_its_values_read(spark):
    """Distinct complete keys per row: two keys whose values would read alike unquoted stay two keys; a
    key with a null is not counted."""
    rule = unique("dt", "a", "b")
    alike = [(DAY, "x, b=y", "z"), (DAY, "x", "y, b=z")]  # unquoted, both read `a=x, b=y, b=z`
    df = spark.createDataFrame(
        [*alike, *alike, *[(DAY, "it's", "w"), (DAY, "n", None)] * 2, (DAY, "once", "v")],
        "dt date, a string, b string",
    )
    flagged = gate.flagged(Lake(), df, [rule], [DAY])
    assert {r[0] for r in flagged.select(rule.flag_column).collect()} == {
        "dt='2024-01-02', a='x, b=y', b='z'",
        "dt='2024-01-02', a='x', b='y, b=z'",
        "dt='2024-01-02', a='it''s', b='w'",
        "dt='2024-01-02', a='n', b=null",
        None,  # the row of `once`
    }
    now = dt.datetime(2024, 1, 3, tzinfo=dt.UTC)
    [measured] = metrics.measure(flagged, [rule], ["dt", "a", "b"], [DAY], None, now)
    assert (measured.rows, measured.uniqueness) == (9, 4 / 9)
