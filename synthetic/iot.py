"""Synthetic landing files for the iot domain: sensor readings and the daily device registry snapshot.

The devices are the shared population's (`population.devices`); the registry of a
day lists the devices installed by the end of that day. Each registered device
reports periodically (an evenly spaced schedule with jitter, so a device never
reports twice at one instant) a value that follows its own baseline, a daily
cycle and bounded noise, always inside its kind's normal band. On top of that the
generator plants true anomalies among the valid readings, and records them:

- spikes: one reading of a device far from its baseline (10-14 standard
  deviations, inside the physical limits), on devices with enough readings for
  a z-score;
- excursions: a device held outside its normal band for 70-120 minutes (a
  reading at the start and at the end of the episode, and every scheduled one
  in between).

About `bad_share` of the lines are bad on purpose, one defect per line, in the
kinds of `READING_BAD_KINDS` and `DEVICE_BAD_KINDS`. Deterministic per (seed, day).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random

from synthetic import GeneratedDay, dumps, split_files
from synthetic.population import REGIONS, SENSOR_KINDS, TENANTS, Device, new_uuid
from synthetic.population import population as synthetic_population

UNITS = {"temperature": "C", "humidity": "%", "pressure": "hPa"}
# kind: (daily amplitude, noise half-width, readings per day relative to a temperature sensor)
BEHAVIOUR = {"temperature": (1.5, 0.5, 1.0), "humidity": (3.0, 1.0, 0.8), "pressure": (4.0, 1.0, 0.5)}
FIRMWARE = {"1.4.2": 0.15, "1.5.0": 0.35, "2.0.1": 0.50}
READING_BAD_KINDS = (
    "malformed_json",
    "missing_device_id",
    "invalid_device_id",
    "unparseable_timestamp",
    "value_not_a_number",
    "value_out_of_range",
    "unknown_device",
    "duplicate",
)
DEVICE_BAD_KINDS = ("malformed_json", "duplicate")
BAD_TIMESTAMPS = ("2024-13-45T25:61:00Z", "yesterday", "01/02/2024 10:00", "", "2024-02-30T10:00:00Z")
BAD_VALUES = ("n/a", "NaN", "", "ERR", None, "Infinity")
MIN_BASELINE = 10  # other readings a z-score needs (same rule as transforms.iot.MIN_BASELINE)
SPIKE_SHARE = 0.001
MAX_EXCURSIONS = 5
INSTALL_START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
INSTALL_SPAN_SECONDS = 380 * 86_400  # the last devices are installed in mid-January 2024
DAY_MS = 86_400_000


_CLOCK = [f"T{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)]
_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]


def _iso_ms(day_prefix: str, ms: int) -> str:
    """`day_prefix` (YYYY-MM-DD) and the millisecond of the day as ISO-8601 UTC, from lookup tables (fast)."""
    seconds, millis = divmod(ms, 1000)
    return day_prefix + _CLOCK[seconds] + _MILLIS[millis]


class _Profile:
    """How one device behaves: its baseline, daily phase, noise and firmware."""

    __slots__ = (
        "device",
        "installed_at",
        "firmware",
        "baseline",
        "amplitude",
        "noise",
        "phase",
        "rate",
        "sigma",
    )

    def __init__(self, rng: random.Random, device: Device):
        (low, high), (band_low, band_high) = SENSOR_KINDS[device.kind]
        amplitude, noise, rate = BEHAVIOUR[device.kind]
        margin = amplitude + noise + 0.5
        self.device = device
        self.installed_at = INSTALL_START + dt.timedelta(seconds=rng.randrange(INSTALL_SPAN_SECONDS))
        self.firmware = rng.choices(list(FIRMWARE), weights=list(FIRMWARE.values()))[0]
        self.baseline = rng.uniform(band_low + margin, band_high - margin)
        self.amplitude, self.noise = amplitude, noise
        self.phase = rng.uniform(0, 2 * math.pi)
        self.rate = rate * rng.uniform(0.7, 1.3)
        self.sigma = math.sqrt(amplitude**2 / 2 + noise**2 / 3)  # std of sine + uniform noise

    def normal(self, rng: random.Random, ms: int) -> float:
        return (
            self.baseline
            + self.amplitude * math.sin(2 * math.pi * ms / DAY_MS + self.phase)
            + rng.uniform(-self.noise, self.noise)
        )


def registry(seed: int = 7) -> list[_Profile]:
    """Every device of the population with its installation time and behaviour (fixed per seed)."""
    rng = random.Random(f"iot-registry-{seed}")
    return [_Profile(rng, device) for device in synthetic_population(seed).devices]


def _allocate(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder: the parts add up exactly)."""
    if not weights or total <= 0:
        return [0] * len(weights)
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    parts = [int(x) for x in exact]
    for index in sorted(range(len(weights)), key=lambda i: parts[i] - exact[i])[: total - sum(parts)]:
        parts[index] += 1
    return parts


def _line(device: Device, firmware: str, timestamp: str, value: str) -> str:
    """A reading's JSON line, formatted directly (json.dumps is the slowest step at 1M rows)."""
    return (
        f'{{"device_id":"{device.device_id}","timestamp":"{timestamp}","value":{value},'
        f'"unit":"{UNITS[device.kind]}","kind":"{device.kind}","tenant_id":"{device.tenant_id}",'
        f'"region":"{device.region}","firmware":"{firmware}"}}'
    )


def _reading(device: Device, firmware: str, timestamp: str, value) -> dict:
    return {
        "device_id": device.device_id,
        "timestamp": timestamp,
        "value": value,
        "unit": UNITS[device.kind],
        "kind": device.kind,
        "tenant_id": device.tenant_id,
        "region": device.region,
        "firmware": firmware,
    }


def _bad_reading(kind: str, rng: random.Random, profiles: list[_Profile], day_prefix: str) -> str:
    profile = rng.choice(profiles)
    device = profile.device
    ms = rng.randrange(DAY_MS)
    reading = _reading(device, profile.firmware, _iso_ms(day_prefix, ms), round(profile.normal(rng, ms), 2))
    if kind == "malformed_json":
        text = dumps(reading)
        return text[: rng.randrange(10, len(text) // 2)]
    if kind == "missing_device_id":
        if rng.random() < 0.5:
            del reading["device_id"]
        else:
            reading["device_id"] = rng.choice([None, ""])
    elif kind == "invalid_device_id":
        reading["device_id"] = rng.choice(
            [f"dev-{rng.randrange(10_000):05d}", device.device_id[:-4], device.device_id.replace("-", "")]
        )
    elif kind == "unparseable_timestamp":
        reading["timestamp"] = rng.choice(BAD_TIMESTAMPS)
    elif kind == "value_not_a_number":
        reading["value"] = rng.choice(BAD_VALUES)
    elif kind == "value_out_of_range":
        low, high = SENSOR_KINDS[device.kind][0]
        reading["value"] = rng.choice(
            [-999.0, round(high + rng.uniform(0.5, 50), 2), round(low - rng.uniform(0.5, 50), 2)]
        )
    elif kind == "unknown_device":  # a device that is not in the registry (not in the population at all)
        tenant = rng.choice(TENANTS)
        reading.update(device_id=new_uuid(rng), tenant_id=tenant.tenant_id, region=tenant.region)
    return dumps(reading)


def _scatter(rng: random.Random, lines: list[str], extra: list[tuple[int, str]]) -> list[str]:
    """`lines` with each `(position, line)` of `extra` inserted before lines[position]."""
    merged: list[str] = []
    previous = 0
    for position, line in sorted(extra, key=lambda item: item[0]):
        merged.extend(lines[previous:position])
        merged.append(line)
        previous = position
    return merged + lines[previous:]


def _bad_kinds(count: int, kinds: tuple[str, ...]) -> list[str]:
    return [kinds[i % len(kinds)] for i in range(count)]


def _devices_source(rng: random.Random, registered: list[_Profile], bad_share: float):
    lines = [
        json.dumps(
            {
                "device_id": p.device.device_id,
                "tenant_id": p.device.tenant_id,
                "region": p.device.region,
                "kind": p.device.kind,
                "installed_at": p.installed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            separators=(",", ":"),
        )
        for p in registered
    ]
    bad = {kind: 0 for kind in DEVICE_BAD_KINDS}
    extra = []
    for kind in _bad_kinds(round(len(lines) * bad_share) if lines else 0, DEVICE_BAD_KINDS):
        bad[kind] += 1
        index = rng.randrange(len(lines))
        if kind == "malformed_json":  # a partial write, retried in full right after
            extra.append((index, lines[index][: rng.randrange(10, len(lines[index]) // 2)]))
        else:  # the export listed the device twice
            extra.append((min(len(lines), index + 1 + rng.randrange(20)), lines[index]))
    merged = _scatter(rng, lines, extra)
    expected = {
        "input": len(merged),
        "accepted": len(lines),
        "quarantined": bad["malformed_json"],
        "duplicates": bad["duplicate"],
    }
    return merged, bad, expected


def generate_day(day: dt.date, rows: int, seed: int = 7, bad_share: float = 0.02) -> GeneratedDay:
    """`rows` reading lines for `day` and the day's registry snapshot; the record says what was written."""
    rng = random.Random(f"iot-{seed}-{day.isoformat()}")
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    registered = [p for p in registry(seed) if p.installed_at < end_of_day]
    device_lines, device_bad, device_expected = _devices_source(rng, registered, bad_share)
    prefix = day.isoformat()

    n_bad = round(rows * bad_share) if registered else rows
    n_valid = rows - n_bad
    # Plan the anomalies first: an excursion adds two readings (its start and end) to the device's schedule.
    n_excursions = min(MAX_EXCURSIONS, max(1, n_valid // 10_000), len(registered)) if n_valid >= 500 else 0
    excursion_devices = set(rng.sample(range(len(registered)), n_excursions))
    counts = _allocate(n_valid - 2 * n_excursions, [p.rate for p in registered])

    readings: list[tuple[int, int, str]] = []  # (ms, device index, line)
    spikes: list[list[str]] = []
    sustained: list[list[str]] = []
    eligible = [i for i, n in enumerate(counts) if n >= MIN_BASELINE + 1 and i not in excursion_devices]
    n_spikes = min(len(eligible), max(1, round(n_valid * SPIKE_SHARE))) if eligible else 0
    spike_devices = set(rng.sample(eligible, n_spikes))
    for index, (profile, count) in enumerate(zip(registered, counts)):
        device, firmware = profile.device, profile.firmware
        if count == 0 and index not in excursion_devices:
            continue
        interval = DAY_MS / max(count, 1)
        jitter = interval / 5
        offset = rng.uniform(jitter, interval - jitter)  # with the jitter: every reading inside the day
        schedule = [
            min(DAY_MS - 1, max(0, int(offset + i * interval + rng.uniform(-jitter, jitter))))
            for i in range(count)
        ]
        values = [profile.normal(rng, ms) for ms in schedule]
        if index in excursion_devices:
            start = rng.randrange(DAY_MS - 2 * 3_600_000)
            end = start + rng.randrange(70, 121) * 60_000
            while (
                start in schedule or end in schedule
            ):  # the episode's readings never collide with scheduled ones
                start, end = start + 1, end + 1
            (_, _), (band_low, band_high) = SENSOR_KINDS[device.kind]
            above = rng.random() < 0.5
            reach = profile.amplitude + profile.noise
            for ms in (start, end):
                schedule.append(ms)
                values.append(0.0)
            for i, ms in enumerate(schedule):
                if start <= ms <= end:
                    shift = rng.uniform(1.0, 3.0) * reach
                    values[i] = band_high + shift if above else band_low - shift
                    sustained.append([device.device_id, _iso_ms(prefix, ms)])
        if index in spike_devices:
            i = rng.randrange(len(schedule))
            (low, high), _ = SENSOR_KINDS[device.kind]
            jump = rng.uniform(10, 14) * profile.sigma
            up = profile.baseline + jump <= high and (rng.random() < 0.5 or profile.baseline - jump < low)
            values[i] = profile.baseline + jump if up else profile.baseline - jump
            spikes.append([device.device_id, _iso_ms(prefix, schedule[i])])
        for ms, value in zip(schedule, values):
            readings.append((ms, index, _line(device, firmware, _iso_ms(prefix, ms), f"{value:.2f}")))
    readings.sort(key=lambda item: (item[0], item[1]))
    lines = [line for _, _, line in readings]

    bad = {kind: 0 for kind in READING_BAD_KINDS}
    extra: list[tuple[int, str]] = []
    for kind in _bad_kinds(n_bad, READING_BAD_KINDS):
        if kind == "duplicate" and lines:  # a resend of an earlier valid reading, shortly after it
            bad[kind] += 1
            index = rng.randrange(len(lines))
            extra.append((min(len(lines), index + 1 + rng.randrange(50)), lines[index]))
            continue
        kind = "malformed_json" if kind == "duplicate" else kind
        bad[kind] += 1
        extra.append(
            (rng.randrange(len(lines) + 1), _bad_reading(kind, rng, registered or registry(seed), prefix))
        )
    lines = _scatter(rng, lines, extra)
    files = split_files(lines)
    quarantined = sum(n for kind, n in bad.items() if kind != "duplicate")
    record = {
        "domain": "iot",
        "day": prefix,
        "seed": seed,
        "lines": {"readings": len(lines), "devices": len(device_lines)},
        "files": {"readings": len(files), "devices": 1},
        "bad": {"readings": bad, "devices": device_bad},
        "expected": {
            "readings": {
                "input": len(lines),
                "accepted": len(lines) - quarantined - bad["duplicate"],
                "quarantined": quarantined,
                "duplicates": bad["duplicate"],
            },
            "devices": device_expected,
        },
        "registered_devices": len(registered),
        "regions": sorted({p.device.region for p in registered} or REGIONS),
        "anomalies": {
            "spikes": len(spikes),
            "excursions": n_excursions,
            "excursion_readings": len(sustained),
            "spike_readings": sorted(spikes),
            "sustained_readings": sorted(sustained),
        },
    }
    return GeneratedDay(day=day, sources={"readings": files, "devices": [device_lines]}, record=record)
