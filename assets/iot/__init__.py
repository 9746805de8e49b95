"""The iot domain: sensor readings of the tenants' devices and the daily device registry,
landing -> raw -> processed -> curated. No personal data: the devices are industrial sensors
owned by tenants; tenant_id is what needs care."""

from lakehouse.datasets import Classification as C
from lakehouse.datasets import Dataset
from quality.rules import UUID, between, matches, one_of, references, required, typed
from transforms import iot as t

DOMAIN = "iot"
OWNER = "team:iot-platform"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
RAW_COLUMNS = {"line": "the landing line exactly as received", "line_number": "1-based line in source_file"}
DEVICE_CLASSIFICATION = {
    "device_id": C.INTERNAL,
    "tenant_id": C.CONFIDENTIAL,
    "region": C.INTERNAL,
    "kind": C.PUBLIC,
}
READING_CLASSIFICATION = {
    **DEVICE_CLASSIFICATION,
    "value": C.CONFIDENTIAL,
    "unit": C.PUBLIC,
    "firmware": C.INTERNAL,
}

RAW_DEVICES = Dataset(
    name="devices",
    domain=DOMAIN,
    layer="raw",
    owner=OWNER,
    landing="devices",
    retention_days=90,
    description="Every line of the day's device registry snapshot, unparsed, with source file, line number, "
    "ingestion time and run.",
    columns=RAW_COLUMNS,
    classification={"line": C.CONFIDENTIAL},
)
RAW_READINGS = Dataset(
    name="readings",
    domain=DOMAIN,
    layer="raw",
    owner=OWNER,
    landing="readings",
    retention_days=90,
    description="Every sensor reading line of the day, unparsed, with source file, line number, ingestion "
    "time "
    "and run.",
    columns=RAW_COLUMNS,
    classification={"line": C.CONFIDENTIAL},
)
DEVICES = Dataset(
    name="devices",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_DEVICES.path,),
    transform=t.parse_devices,
    quarantine=True,
    primary_key=("device_id",),
    deduplicate_on=("device_id",),
    retention_days=365,
    description="The devices registered on the day, one row per device. Refused: malformed_json, "
    "missing_device_id, invalid_device_id, unknown_kind, unparseable_installed_at.",
    columns={
        "device_id": "device UUID (lower case)",
        "kind": "sensor kind: temperature, humidity or pressure",
        "installed_at": "installation time (UTC)",
    },
    classification=DEVICE_CLASSIFICATION,
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("kind"),
        matches("device_id", UUID, "uuid"),
        one_of("kind", tuple(t.SENSOR_KINDS)),
    ),
)
READINGS = Dataset(
    name="readings",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_READINGS.path, DEVICES.path),
    transform=t.parse_readings,
    quarantine=True,
    primary_key=("device_id", "timestamp"),
    deduplicate_on=("device_id", "timestamp"),
    retention_days=365,
    description="Typed sensor readings, one per device and timestamp per day (resends removed). Refused, "
    "first "
    "broken rule wins: malformed_json, missing_device_id, invalid_device_id, unparseable_timestamp, "
    "value_not_a_number, unknown_kind, value_out_of_range (the kind's physical limits), unknown_device "
    "(not in the day's registry).",
    columns={
        "timestamp": "reading time (UTC)",
        "value": "measured value, in unit",
        "unit": "C, % or hPa",
        "firmware": "device firmware version reported with the reading",
    },
    classification=READING_CLASSIFICATION,
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("value", "kind"),
        typed("timestamp", "TimestampType"),
        between("value", *t.PHYSICAL_RANGE, name="value_within_physical_limits"),
        references("device_id", "processed/iot/devices"),
    ),
)
DEVICE_HOURLY_AGGREGATES = Dataset(
    name="device_hourly_aggregates",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(READINGS.path,),
    transform=t.device_hourly_aggregates,
    primary_key=("dt", "device_id", "hour"),
    retention_days=1095,
    description="Readings, min, max, mean and sample standard deviation per device and hour.",
    columns={
        "hour": "hour of the readings (UTC)",
        "readings": "readings of the device in the hour",
        "min": "lowest value",
        "max": "highest value",
        "mean": "average value",
        "stddev": "sample standard deviation; null for one reading",
    },
    classification=READING_CLASSIFICATION,
    tenant_column="tenant_id",
    region_column="region",
    checks=(
        between("readings", 1, name="readings_positive"),
        references("device_id", "processed/iot/devices"),
    ),
)
READING_ANOMALIES = Dataset(
    name="reading_anomalies",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(READINGS.path,),
    transform=t.reading_anomalies,
    primary_key=("dt", "device_id", "timestamp"),
    retention_days=1095,
    description="Readings far from their device's behaviour of the day. reason out_of_band_sustained: "
    "outside the "
    "kind's normal band in a run of consecutive out-of-band readings spanning more than an hour; "
    "otherwise z_score: |z| > 3 against the device's other readings of the day (leave-one-out mean "
    "and sample stddev, at least 10 of them).",
    columns={
        "z_score": "(value - baseline_mean) / baseline_stddev; null with fewer than 10 other readings",
        "baseline_mean": "mean of the device's other readings of the day",
        "baseline_stddev": "sample stddev of the device's other readings of the day",
        "out_of_band_minutes": "span of the out-of-band run the reading belongs to",
        "reason": "out_of_band_sustained (out of band for over an hour) or z_score (|z| > 3)",
    },
    classification=READING_CLASSIFICATION,
    tenant_column="tenant_id",
    region_column="region",
    checks=(references("device_id", "processed/iot/devices"),),
)
DEVICE_DAILY_HEALTH = Dataset(
    name="device_daily_health",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(READINGS.path, READING_ANOMALIES.path),
    transform=t.device_daily_health,
    primary_key=("dt", "device_id"),
    retention_days=365,
    description="Per device and day: readings, active hours, anomalies and anomaly rate (capacity feature "
    "inputs).",
    columns={
        "readings": "readings of the device that day",
        "mean_value": "average value of the day",
        "anomalies": "readings flagged as anomalies (any reason)",
        "z_score_anomalies": "anomalies whose reason is the z-score",
        "anomaly_rate": "anomalies / readings",
        "active_hours": "distinct hours with at least one reading",
    },
    classification=READING_CLASSIFICATION,
    tenant_column="tenant_id",
    region_column="region",
    checks=(
        between("anomaly_rate", 0, 1, name="anomaly_rate_is_a_share"),
        between("readings", 1, name="readings_positive"),
    ),
)

DATASETS = (
    RAW_DEVICES,
    RAW_READINGS,
    DEVICES,
    READINGS,
    DEVICE_HOURLY_AGGREGATES,
    READING_ANOMALIES,
    DEVICE_DAILY_HEALTH,
)
