"""Table rules: one declaration per rule, rendered twice, as a Great Expectations expectation (the verdict,
the check metadata, Data Docs) and as a Spark condition per row (the per-partition quality metrics).

Row rules (which rows are accepted) live in the transforms: a failing row gets `quarantine_reason` = the
rule's name and goes to quarantine. Table rules judge what was written and run as Dagster asset checks:
`error` severity blocks downstream assets of the same run, `warn` records and lets the run go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column
from pyspark.sql import functions as F

if TYPE_CHECKING:
    import great_expectations.expectations as gxe

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
CURRENCY_CODE = r"^[A-Z]{3}$"  # ISO 4217
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Targets of the event-driven data architecture document (Data Quality Metrics).
COMPLETENESS_TARGET = 0.99
VALIDITY_TARGET = 0.95
CONSISTENCY_TARGET = 0.98


class Severity(str, Enum):
    ERROR = "error"  # blocking: downstream assets of the run do not start
    WARN = "warn"  # recorded, the run goes on


class Dimension(str, Enum):
    COMPLETENESS = "completeness"
    VALIDITY = "validity"
    UNIQUENESS = "uniqueness"
    CONSISTENCY = "consistency"


@dataclass(frozen=True)
class Rule:
    """One table rule over the rows a step wrote.

    `mostly` is the threshold: the share of rows that must pass (1.0: every row). `reference` names the
    dataset (`layer/domain/name`) and column a `references` rule looks values up in, same partition.
    """

    name: str
    kind: str  # not_null | unique | between | in_set | regex | of_type | references
    columns: tuple[str, ...]
    dimension: Dimension
    severity: Severity = Severity.ERROR
    mostly: float = 1.0
    min_value: float | None = None
    max_value: float | None = None
    strict_min: bool = False
    values: tuple = ()
    pattern: str | None = None
    type_name: str | None = None
    reference: tuple[str, str] | None = None

    @property
    def column(self) -> str:
        return self.columns[0]

    @property
    def flag_column(self) -> str:
        """The column the validated frame carries for a rule that looks beyond its row (`gate.flagged`): a
        `references` rule's is null where the value is not found, a `unique` rule's holds the key (as text)
        where the key repeats."""
        return f"{'_ref' if self.kind == 'references' else '_repeated'}_{self.name}"

    @property
    def threshold(self) -> str:
        share = f"{self.mostly:.0%} of rows" if self.mostly < 1 else "every row"
        what = {
            "not_null": "not null",
            "unique": "unique",
            "in_set": f"in {list(self.values)}",
            "regex": f"matches {self.pattern}",
            "of_type": f"of type {self.type_name}",
            "between": f"{'>' if self.strict_min else '>='} {self.min_value}"
            if self.max_value is None
            else f"in {'(' if self.strict_min else '['}{self.min_value}, {self.max_value}]"
            if self.min_value is not None
            else f"<= {self.max_value}",
            "references": f"found in {self.reference[0]}.{self.reference[1]}" if self.reference else "",
        }[self.kind]
        return f"{', '.join(self.columns)} {what} ({share})"

    def expectation(self) -> gxe.Expectation:
        """The Great Expectations expectation of this rule (`meta.rule` names it in results and Data Docs).
        GX is imported here, not at module import: it takes seconds, and only steps that validate need it."""
        import great_expectations.expectations as gxe

        common: dict[str, Any] = {"meta": {"rule": self.name, "severity": self.severity.value}}
        mostly: dict[str, Any] = {"mostly": self.mostly} if self.mostly < 1 else {}
        if self.kind == "not_null":
            return gxe.ExpectColumnValuesToNotBeNull(column=self.column, **mostly, **common)
        if self.kind == "unique":
            return gxe.ExpectColumnValuesToBeNull(column=self.flag_column, **mostly, **common)
        if self.kind == "between":
            return gxe.ExpectColumnValuesToBeBetween(
                column=self.column,
                min_value=self.min_value,
                max_value=self.max_value,
                strict_min=self.strict_min,
                **mostly,
                **common,
            )
        if self.kind == "in_set":
            return gxe.ExpectColumnValuesToBeInSet(
                column=self.column, value_set=list(self.values), **mostly, **common
            )
        if self.kind == "regex":
            assert self.pattern is not None, self.name
            return gxe.ExpectColumnValuesToMatchRegex(
                column=self.column, regex=self.pattern, **mostly, **common
            )
        if self.kind == "of_type":
            assert self.type_name is not None, self.name
            return gxe.ExpectColumnValuesToBeOfType(column=self.column, type_=self.type_name, **common)
        if self.kind == "references":
            return gxe.ExpectColumnValuesToNotBeNull(column=self.flag_column, **mostly, **common)
        raise ValueError(f"rule {self.name}: unknown kind {self.kind!r}")

    def passes(self) -> Column | None:
        """Per row: does the row pass (nulls pass value rules, as in Great Expectations)? None: not per
        row."""
        value = F.col(self.column)
        if self.kind == "not_null":
            return value.isNotNull()
        if self.kind == "references":
            return F.col(self.column).isNull() | F.col(self.flag_column).isNotNull()
        if self.kind == "between":
            low = (
                (value > self.min_value if self.strict_min else value >= self.min_value)
                if self.min_value is not None
                else F.lit(True)
            )
            high = value <= self.max_value if self.max_value is not None else F.lit(True)
            return value.isNull() | (low & high)
        if self.kind == "in_set":
            return value.isNull() | value.isin(*self.values)
        if self.kind == "regex":
            assert self.pattern is not None, self.name
            return value.isNull() | value.cast("string").rlike(self.pattern)
        return None


def required(*columns: str, severity: Severity = Severity.ERROR, mostly: float = 1.0) -> list[Rule]:
    """Required fields present: not null."""
    return [Rule(f"{c}_present", "not_null", (c,), Dimension.COMPLETENESS, severity, mostly) for c in columns]


def complete(*columns: str) -> list[Rule]:
    """The completeness target (> 99% of values present), as a warning."""
    return required(*columns, severity=Severity.WARN, mostly=COMPLETENESS_TARGET)


def unique(*columns: str, severity: Severity = Severity.ERROR) -> Rule:
    key = [c for c in columns if c != "dt"]
    return Rule(
        f"{'_'.join(key)}_unique_per_day" if key else "one_row_per_day",
        "unique",
        columns,
        Dimension.UNIQUENESS,
        severity,
    )


def between(
    column: str,
    min_value: float | None = None,
    max_value: float | None = None,
    *,
    name: str,
    strict_min: bool = False,
    severity: Severity = Severity.ERROR,
    mostly: float = 1.0,
) -> Rule:
    """Ranges and business rules (amounts positive, quantities >= 1, physical limits, costs >= 0)."""
    return Rule(
        name, "between", (column,), Dimension.VALIDITY, severity, mostly, min_value, max_value, strict_min
    )


def one_of(
    column: str, values: tuple[str, ...], *, severity: Severity = Severity.ERROR, mostly: float = 1.0
) -> Rule:
    return Rule(
        f"{column}_allowed", "in_set", (column,), Dimension.VALIDITY, severity, mostly, values=tuple(values)
    )


def matches(
    column: str, pattern: str, format_name: str, *, severity: Severity = Severity.ERROR, mostly: float = 1.0
) -> Rule:
    """Formats: UUID, currency code, email (`format_name` names the rule)."""
    return Rule(
        f"{column}_is_{format_name}",
        "regex",
        (column,),
        Dimension.VALIDITY,
        severity,
        mostly,
        pattern=pattern,
    )


def holds(
    flag: str,
    *,
    severity: Severity = Severity.WARN,
    mostly: float = CONSISTENCY_TARGET,
    dimension: Dimension = Dimension.CONSISTENCY,
) -> Rule:
    """A condition computed into a boolean column holds, e.g. a total equals its items (consistency)."""
    return Rule(flag, "in_set", (flag,), dimension, severity, mostly, values=(True,))


def typed(column: str, type_name: str) -> Rule:
    """The column's engine type (e.g. TimestampType for ISO-8601 timestamps parsed on the way in)."""
    return Rule(
        f"{column}_is_{type_name.removesuffix('Type').lower()}",
        "of_type",
        (column,),
        Dimension.VALIDITY,
        type_name=type_name,
    )


def references(
    column: str,
    dataset: str,
    target_column: str | None = None,
    *,
    severity: Severity = Severity.ERROR,
    mostly: float = 1.0,
) -> Rule:
    """Referential integrity: every value is a key of `dataset` (layer/domain/name) in the same partition."""
    target = dataset.split("/")[-1]
    return Rule(
        f"{column}_in_{target}",
        "references",
        (column,),
        Dimension.CONSISTENCY,
        severity,
        mostly,
        reference=(dataset, target_column or column),
    )
