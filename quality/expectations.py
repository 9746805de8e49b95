"""Great Expectations, once per process: one ephemeral context, one Spark data source on the engine's own
DataFrames (Spark Connect), one suite and validation definition per dataset, Data Docs in a local folder.

An ephemeral context keeps nothing on disk but the Data Docs pages: suites are code (`quality/suites.py`),
so there is no GX project to keep in sync, and concurrent runs never race on GX's JSON stores.

GX's own index builder is not used: it deletes every page whose result is not in the context's stores,
i.e. every page of another process, so the index is a plain list of the pages, each appended as it is
built (`_add_to_index`) and shown newest first.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import html
import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import great_expectations as gx
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from pyspark.sql import DataFrame

from quality.rules import Rule

SITE = "lakehouse"
SAMPLE_SIZE = 5  # failing values shown per check
log = logging.getLogger(__name__)


def data_docs_dir(state_dir: Path) -> Path:
    """Where the Data Docs HTML is built: `<state dir>/quality/data_docs/` (index.html at its top)."""
    return state_dir / "quality" / "data_docs"


@functools.lru_cache(maxsize=4)
def _context(docs_dir: str):
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}  # type: ignore[assignment]
    context.add_data_docs_site(
        site_name=SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.data_sources.add_spark(name="engine")
    return context


@functools.lru_cache(maxsize=4)
def _validation_pages(context):
    """The site's validation pages, built by one long-lived section builder: `build_data_docs` makes a new
    site builder, and so a new Jinja environment that compiles every template again, for every page (most
    of a page's cost). The site's static assets are copied once, here."""
    config = context.variables.data_docs_sites[SITE]
    site = context._init_site_builder_for_data_docs_site_creation(SITE, config)
    site.target_store.copy_static_assets()
    return site.site_section_builders["validations"]


@functools.lru_cache(maxsize=256)
def _validation(docs_dir: str, dataset_id: str, rules: tuple[Rule, ...]):
    """The dataset's validation definition; a changed suite (e.g. a test's) gets a definition of its own."""
    context = _context(docs_dir)
    digest = hashlib.sha1(repr(rules).encode()).hexdigest()[:8]
    name = f"{dataset_id}.{digest}"
    source = context.data_sources.get("engine")
    batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("partitions")
    suite = context.suites.add(
        gx.ExpectationSuite(name=name, expectations=[rule.expectation() for rule in rules])
    )
    return context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))


# BASIC gives counts, percent and a sample of failing values; SUMMARY adds value counts for ~40% more time.
def validate(
    df: DataFrame,
    dataset_id: str,
    rules: list[Rule],
    state_dir: Path,
    run_name: str,
    masked: Callable[[Rule], bool] = lambda rule: False,
) -> tuple[ExpectationSuiteValidationResult, str | None]:
    """Run the suite on `df` (one validation, all expectations) and build its Data Docs page.

    Failing values of the rules `masked` selects are masked in the result before the page is built, so
    neither the check metadata nor the HTML shows them. Returns the result and the page's file URL (None
    when the page could not be built: docs are a view, never a reason to fail a step).
    """
    docs_dir = str(data_docs_dir(state_dir))
    definition = _validation(docs_dir, dataset_id, tuple(rules))
    result = definition.run(
        batch_parameters={"dataframe": df},
        run_id=RunIdentifier(run_name=run_name),
        result_format={"result_format": "BASIC", "partial_unexpected_count": SAMPLE_SIZE},
    )
    by_name = {rule.name: rule for rule in rules}
    for outcome in result.results:
        if masked(by_name[outcome.expectation_config.meta["rule"]]) and outcome.result:
            _mask_samples(outcome.result)
    try:
        context = _context(docs_dir)
        key = _result_key(context, definition.suite.name, run_name)
        context.validation_results_store.set(key, result)  # the masked result replaces the stored one
        _validation_pages(context).build(resource_identifiers=[key])
        context.validation_results_store.remove_key(key)  # the store would grow with every validation
        url = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE)[0]["site_url"]
        site = Path(docs_dir).resolve()
        _add_to_index(site, Path(url2pathname(urlparse(url).path)).relative_to(site))
    except Exception as error:  # noqa: BLE001 - see docstring
        log.warning("Data Docs not built for %s: %s", dataset_id, error)
        url = None
    return result, url


INDEX_HEAD = (  # pages are appended oldest first and shown newest first
    "<!doctype html><title>Data Docs</title>"
    "<style>ul{display:flex;flex-direction:column-reverse}</style>"
    "<h1>Validations</h1><ul>\n"
)


def _index_entry(page: Path) -> str:
    """`page`: validations/<suite>/<run name>/<run time>/<batch>.html, relative to the site."""
    return f'<li><a href="{html.escape(str(page))}">{html.escape(" / ".join(page.parts[1:-1]))}</a></li>\n'


def _add_to_index(docs_dir: Path, page: Path) -> None:
    """Append the new page to `index.html`: one line, however many pages the site holds (listing them all
    cost a gate 20 ms at 560 pages, and grew with history). Processes take turns by a lock; an index
    missing or of another layout is rebuilt once from the pages on disk, oldest first."""
    index = docs_dir / "index.html"
    with (docs_dir / ".index.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the lock file closes
        head = INDEX_HEAD.encode()
        try:
            with index.open("rb") as shown:
                current = shown.read(len(head)) == head
        except FileNotFoundError:
            current = False
        if current:
            with index.open("a") as shown:
                shown.write(_index_entry(page))
            return
        pages = sorted(
            (p.relative_to(docs_dir) for p in (docs_dir / "validations").rglob("*.html")),
            key=lambda p: p.parts[-2],  # the run time
        )
        staged = index.with_name(".index.tmp")
        staged.write_text(INDEX_HEAD + "".join(_index_entry(p) for p in pages))
        staged.replace(index)  # a reader never sees half an index


def mask_value(value) -> str:
    """Enough to see that something is there, not what: `2***`."""
    text = str(value)
    return text[:1] + "***" if text else text


def _mask_samples(found: dict) -> None:
    def masked(value):
        if value is None:
            return None
        return {k: masked(v) for k, v in value.items()} if isinstance(value, dict) else mask_value(value)

    found["partial_unexpected_list"] = [masked(v) for v in found.get("partial_unexpected_list") or []]
    found["partial_unexpected_counts"] = [
        dict(c, value=masked(c.get("value"))) for c in found.get("partial_unexpected_counts") or []
    ]
    found.pop("partial_unexpected_index_list", None)


def _result_key(context, suite_name: str, run_name: str):
    keys = [
        k
        for k in context.validation_results_store.list_keys()
        if k.expectation_suite_identifier.name == suite_name and k.run_id.run_name == run_name
    ]
    return max(keys, key=lambda k: k.run_id.run_time)
