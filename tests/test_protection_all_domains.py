"""Every domain, one day, through Dagster: no email, name or IP address from the landing files
survives into any processed or curated table, and every declared tenant/region column is there."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re

from pyspark.sql import types as T

from lakehouse.cli import GENERATORS
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 3)
ROWS = 600
EMAIL_OR_IP_KEYS = {"email", "ipAddress", "ip_address", "ip"}
NAME_KEYS = {"firstName", "lastName", "first_name", "last_name", "name"}


def personal_values(value, emails_and_ips: set, names: set, key: str | None = None) -> None:
    """Collect personal values from a parsed landing line, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            personal_values(v, emails_and_ips, names, k)
    elif isinstance(value, list):
        for v in value:
            personal_values(v, emails_and_ips, names, key)
    elif isinstance(value, str) and value:
        if key in EMAIL_OR_IP_KEYS:
            emails_and_ips.add(value)
        elif key in NAME_KEYS:
            names.add(value)


def test_no_personal_data_beyond_raw_in_any_domain(spark, lake, instance):
    from orchestration.definitions import DATASETS, defs

    emails_and_ips: set[str] = set()
    names: set[str] = set()
    for domain, module in GENERATORS.items():
        generated = importlib.import_module(module).generate_day(DAY, ROWS)
        generated.write(lake, domain)
        for files in generated.sources.values():
            for line in (line for file in files for line in file):
                try:
                    personal_values(json.loads(line), emails_and_ips, names)
                except json.JSONDecodeError:
                    continue
    assert len(emails_and_ips) > 20 and len(names) > 5  # the check has something to find

    assets = [a for a in defs.assets]
    assert run_assets(instance, assets, DAY).success

    pattern = re.compile("|".join(re.escape(v) for v in sorted(emails_and_ips, key=len, reverse=True)))
    leaks = []
    scanned = 0
    for dataset in DATASETS:
        if dataset.layer == "raw":
            continue
        table = spark.read.format("delta").load(lake.table_uri(dataset.layer, dataset.domain, dataset.name))
        for column in (dataset.tenant_column, dataset.region_column):
            assert column is None or column in table.columns, f"{dataset.path} lacks declared {column}"
        strings = [f.name for f in table.schema.fields if isinstance(f.dataType, T.StringType)]
        for row in table.select(*strings).collect():
            for column, value in zip(strings, row):
                scanned += 1
                if value and (value in names or pattern.search(value)):
                    leaks.append((dataset.path, column, value[:80]))
    assert scanned > 1000
    assert leaks == []
