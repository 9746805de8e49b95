"""Differentially private releases: the declared privacy of a dataset, the OpenDP mechanisms that add the
noise, and the privacy-budget ledger that refuses a release the period's budget cannot pay for.

A release is one day of a dataset. Its input is each cell's tallies over rows already clipped per user
(at most `max_rows_per_cell` rows per user, day and cell, in at most `max_cells_per_user` cells): so one
user moves a tally by a known amount, and the noise is calibrated to that. Four queries share the day's
epsilon equally (basic composition):

1. rows per cell, with OpenDP's Laplace threshold mechanism: the cells are whatever the data holds, so a
   cell is published only if its noisy count reaches `threshold` (this is where delta comes from);
2. distinct users per published cell, Laplace;
3. rows per published cell and status, Laplace (the status shares are these noisy counts' shares);
4. rows per published cell and latency bin, Laplace (the percentiles are read off the noisy histogram).

Queries 2-4 run over the cells query 1 published, which are public by then. Everything after the noise
is post-processing. OpenDP's threshold mechanism and its integer Laplace are `contrib` features: they
are enabled here, and only here.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse import audit, delta
from lakehouse.config import LakehouseConfig

QUERIES = ("rows", "users", "status", "latency")
Cell = tuple[str, str, str]  # (source, action, resource)


class PrivacyBudgetExceeded(RuntimeError):
    """A release would spend more epsilon than the period's budget has left."""


@dataclass(frozen=True)
class PrivacyDeclaration:
    """What a differentially private dataset promises, per release (one day)."""

    epsilon: float  # spent per release, over the four queries
    delta: float  # the most the threshold mechanism may add; checked against OpenDP's privacy map
    threshold: int  # cells whose noisy row count is below this are not published
    max_rows_per_cell: int  # rows one user contributes per day and cell (clipping)
    max_cells_per_user: int  # cells one user contributes to per day (clipping)
    statuses: tuple[str, ...] = ()  # the public status vocabulary of the cells that have one
    latency_bins_ms: tuple[int, ...] = ()  # upper edges of the latency histogram's bins (last bin: open)
    measured_sources: tuple[str, ...] = ()  # sources whose cells carry latency and status

    def __post_init__(self) -> None:
        if self.epsilon <= 0 or not 0 < self.delta < 1:
            raise ValueError("a private release needs epsilon > 0 and 0 < delta < 1")
        if self.threshold < 1 or self.max_rows_per_cell < 1 or self.max_cells_per_user < 1:
            raise ValueError("threshold and clipping bounds must be at least 1")
        if list(self.latency_bins_ms) != sorted(set(self.latency_bins_ms)):
            raise ValueError("latency bins must be increasing")

    @property
    def query_epsilon(self) -> float:
        return self.epsilon / len(QUERIES)

    @property
    def row_bound(self) -> int:
        """The most rows one user adds to a day: the L1 sensitivity of queries 1, 3 and 4."""
        return self.max_rows_per_cell * self.max_cells_per_user

    def scales(self) -> dict[str, float]:
        """Laplace scale of each query: its L1 sensitivity over its share of epsilon."""
        users = self.max_cells_per_user  # a user counts once in each of at most that many cells
        return {
            query: (users if query == "users" else self.row_bound) / self.query_epsilon for query in QUERIES
        }

    def as_dict(self) -> dict:
        return {**asdict(self), "query_epsilon": self.query_epsilon, "scales": self.scales()}

    def as_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


@dataclass
class DayTallies:
    """One day's exact tallies over clipped rows, as the engine aggregated them."""

    rows: dict[Cell, int] = field(default_factory=dict)
    users: dict[Cell, int] = field(default_factory=dict)
    status: dict[tuple[Cell, str], int] = field(default_factory=dict)
    latency_bin: dict[tuple[Cell, int], int] = field(default_factory=dict)  # bin index into latency_bins_ms
    excluded_no_consent: int = 0  # distinct users left out for lack of analytics consent (not released)


def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")  # the threshold mechanism and integer Laplace are contrib in 0.16
    return dp


def _key(cell: Cell) -> str:
    return json.dumps(list(cell))


def _threshold_measurement(declaration: PrivacyDeclaration):
    dp = _opendp()
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    return dp.m.make_laplace_threshold(
        domain, metric, scale=declaration.scales()["rows"], threshold=declaration.threshold
    )


def _laplace_measurement(scale: float):
    dp = _opendp()
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    return space >> dp.m.then_laplace(scale=scale)


def privacy_loss(declaration: PrivacyDeclaration) -> tuple[float, float]:
    """(epsilon, delta) of one release by OpenDP's privacy maps, at the clipping bounds' distances."""
    c, k = declaration.max_cells_per_user, declaration.max_rows_per_cell
    rows_epsilon, rows_delta = _threshold_measurement(declaration).map(d_in=(c, c * k, k))
    scales = declaration.scales()
    others = (
        _laplace_measurement(scales["users"]).map(d_in=c)
        + _laplace_measurement(scales["status"]).map(d_in=c * k)
        + _laplace_measurement(scales["latency"]).map(d_in=c * k)
    )
    return rows_epsilon + others, rows_delta


def check_declaration(declaration: PrivacyDeclaration) -> None:
    """Refuse a declaration whose mechanisms would spend more than it declares."""
    epsilon, delta_ = privacy_loss(declaration)
    if epsilon > declaration.epsilon * (1 + 1e-9) or delta_ > declaration.delta:
        raise ValueError(
            f"the mechanisms spend epsilon={epsilon:.6g}, delta={delta_:.3g} per release, more than the "
            f"declared epsilon={declaration.epsilon}, delta={declaration.delta} (raise the threshold)"
        )


def _noisy(scale: float, exact: Sequence[int]) -> list[int]:
    return list(_laplace_measurement(scale)(list(exact))) if exact else []


def _shares(counts: Sequence[int]) -> list[float | None]:
    clipped = [max(c, 0) for c in counts]
    total = sum(clipped)
    return [c / total if total else None for c in clipped]


def _percentile(declaration: PrivacyDeclaration, counts: Sequence[int], q: float) -> int | None:
    """The upper edge of the bin where the noisy histogram's cumulative share reaches `q` (the open last
    bin reports its lower edge)."""
    clipped = [max(c, 0) for c in counts]
    total = sum(clipped)
    if not total:
        return None
    cumulative, running = [], 0
    for c in clipped:
        running += c
        cumulative.append(running / total)
    index = bisect.bisect_left(cumulative, q)
    edges = declaration.latency_bins_ms
    return edges[min(index, len(edges) - 1)]


def release(declaration: PrivacyDeclaration, tallies: DayTallies) -> list[dict]:
    """One day's published cells: noisy rows and users, status shares and latency percentiles read off
    noisy counts. A cell whose noisy row count is below the threshold is not published."""
    published = _threshold_measurement(declaration)({_key(c): n for c, n in tallies.rows.items()})
    cells = sorted(tuple(json.loads(key)) for key in published)
    scales = declaration.scales()
    users = _noisy(scales["users"], [tallies.users.get(c, 0) for c in cells])
    measured = [c for c in cells if c[0] in declaration.measured_sources]
    statuses, bins = declaration.statuses, range(len(declaration.latency_bins_ms) + 1)
    status_noisy = _noisy(
        scales["status"], [tallies.status.get((c, s), 0) for c in measured for s in statuses]
    )
    latency_noisy = _noisy(
        scales["latency"], [tallies.latency_bin.get((c, b), 0) for c in measured for b in bins]
    )
    extras: dict[Cell, dict] = {}
    for i, cell in enumerate(measured):
        shares = _shares(status_noisy[i * len(statuses) : (i + 1) * len(statuses)])
        histogram = latency_noisy[i * len(bins) : (i + 1) * len(bins)]
        extras[cell] = {
            **{f"{s}_share": share for s, share in zip(statuses, shares)},
            "p50_latency_ms": _percentile(declaration, histogram, 0.5),
            "p95_latency_ms": _percentile(declaration, histogram, 0.95),
        }
    empty = {
        **{f"{s}_share": None for s in statuses},
        "p50_latency_ms": None,
        "p95_latency_ms": None,
    }
    return [
        {
            "source": cell[0],
            "action": cell[1],
            "resource": cell[2],
            "events": int(published[_key(cell)]),
            "users": max(int(n), 0),
            **extras.get(cell, empty),
        }
        for cell, n in zip(cells, users)
    ]


# ---- the budget ledger ------------------------------------------------------------------------------------

LEDGER_SCHEMA = pa.schema(
    [
        ("dataset_id", pa.string()),
        ("day", pa.date32()),
        ("period", pa.string()),
        ("step", pa.string()),  # charged (before the noise is drawn) | published (after the write)
        ("epsilon", pa.float64()),
        ("delta", pa.float64()),
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)


def ledger_uri(config: LakehouseConfig) -> str:
    return f"{config.root}/privacy/budget_ledger"


def period_of(day: dt.date) -> str:
    """The budget period of a day: its calendar month."""
    return f"{day:%Y-%m}"


def ledger(config: LakehouseConfig, dataset_id: str) -> list[dict]:
    uri = ledger_uri(config)
    if not DeltaTable.is_deltatable(uri, storage_options=config.storage_options):
        return []
    rows = DeltaTable(uri, storage_options=config.storage_options).to_pyarrow_table().to_pylist()
    return [r for r in rows if r["dataset_id"] == dataset_id]


def spent(config: LakehouseConfig, dataset_id: str, period: str) -> float:
    """Epsilon charged to the dataset in the period."""
    return sum(
        r["epsilon"] for r in ledger(config, dataset_id) if r["period"] == period and r["step"] == "charged"
    )


@dataclass(frozen=True)
class Charge:
    """What the ledger decided for the days of a run."""

    draw: list[dt.date]  # days to draw noise for and write (newly charged, or charged but never published)
    published: list[dt.date]  # days already released: kept as published, no new draw, no new spend
    charged_epsilon: float


def charge(
    config: LakehouseConfig,
    dataset_id: str,
    days: Sequence[dt.date],
    declaration: PrivacyDeclaration,
    budget: float,
    run_id: str,
) -> Charge:
    """Charge each day not charged yet, or refuse (clear error, audit record) when a period's charges would
    exceed `budget`; nothing is charged when any day is refused. A day already published is not drawn
    again: a second draw of the same day would spend its epsilon twice."""
    rows = ledger(config, dataset_id)
    charged = {r["day"] for r in rows if r["step"] == "charged"}
    published = sorted({r["day"] for r in rows if r["step"] == "published"} & set(days))
    new = [day for day in days if day not in charged]
    for period in sorted({period_of(day) for day in new}):
        already = sum(r["epsilon"] for r in rows if r["period"] == period and r["step"] == "charged")
        asked = declaration.epsilon * sum(1 for day in new if period_of(day) == period)
        if already + asked > budget + 1e-9:
            detail = (
                f"privacy budget of {dataset_id} for {period} exceeded: {already:g} spent + {asked:g} asked "
                f"> budget {budget:g} (LAKEHOUSE_PRIVACY_BUDGET_EPSILON); release refused"
            )
            audit.write(
                config,
                run_id,
                [
                    audit.Record(
                        "privacy",
                        "refused",
                        dataset_id,
                        partitions=[d.isoformat() for d in new if period_of(d) == period],
                        detail=detail,
                    )
                ],
            )
            raise PrivacyBudgetExceeded(detail)
    _append(config, dataset_id, new, "charged", declaration, run_id)
    return Charge(
        draw=[day for day in days if day not in published],
        published=published,
        charged_epsilon=declaration.epsilon * len(new),
    )


def mark_published(
    config: LakehouseConfig,
    dataset_id: str,
    days: Sequence[dt.date],
    declaration: PrivacyDeclaration,
    run_id: str,
) -> None:
    _append(config, dataset_id, days, "published", declaration, run_id, epsilon=0.0)


def _append(
    config: LakehouseConfig,
    dataset_id: str,
    days: Sequence[dt.date],
    step: str,
    declaration: PrivacyDeclaration,
    run_id: str,
    epsilon: float | None = None,
) -> None:
    if not days:
        return
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "dataset_id": dataset_id,
            "day": day,
            "period": period_of(day),
            "step": step,
            "epsilon": declaration.epsilon if epsilon is None else epsilon,
            "delta": declaration.delta if epsilon is None else 0.0,
            "run_id": run_id,
            "recorded_at": now,
        }
        for day in days
    ]
    delta.append_rows(
        ledger_uri(config), pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA), config.storage_options
    )


def tallies_by_day(rows: Sequence[Mapping], bins: int) -> dict[dt.date, DayTallies]:
    """The engine's tallies (rows of `transforms.usage.usage_tallies`) per day."""
    days: dict[dt.date, DayTallies] = {}
    for r in rows:
        t = days.setdefault(r["dt"], DayTallies())
        if r["query"] == "excluded_no_consent":
            t.excluded_no_consent = int(r["value"])
            continue
        cell = (r["source"], r["action"], r["resource"])
        if r["query"] == "rows":
            t.rows[cell] = int(r["value"])
        elif r["query"] == "users":
            t.users[cell] = int(r["value"])
        elif r["query"] == "status":
            t.status[(cell, r["bucket"])] = int(r["value"])
        elif r["query"] == "latency":
            t.latency_bin[(cell, min(int(r["bucket"]), bins))] = int(r["value"])
    return days
