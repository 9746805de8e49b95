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
kinds of `READING_BAD_KINDS` and `DEVICE_BAD_KINDS`. Deterministic per (seed, day):
one numpy PCG64 stream per day draws each device's schedule and values as arrays,
and the lines are written from them with one template (ids and timestamps as byte
arrays, values from a table of texts).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random

import numpy as np

from synthetic import (
    GeneratedDay,
    fixed_rows,
    iso_millis_bytes,
    iso_millis_of_day,
    json_safe,
    number_text,
    numpy_rng,
    rows_text,
    split_files,
    uuid4_strings,
)
from synthetic.population import REGIONS, SENSOR_KINDS, TENANTS, Device
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


BAD_VALUE_TEXTS = tuple(json.dumps(value) for value in BAD_VALUES)
CHUNK = 1 << 17  # lines built per batch: bounded intermediate memory


def _normal(profiles: list[_Profile], ms: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The normal value of each profile at ms (daily cycle), `noise` uniform in [-1, 1) scaled per profile."""
    baseline, amplitude, half, phase = (
        np.array([getattr(p, k) for p in profiles]) for k in ("baseline", "amplitude", "noise", "phase")
    )
    return baseline + amplitude * np.sin(2 * np.pi * ms / DAY_MS + phase) + half * noise


def _tails(profiles: list[_Profile]) -> np.ndarray:
    """What follows a reading's value, per device: unit, kind, tenant, region, firmware."""
    return np.array(
        [
            f',"unit":"{UNITS[p.device.kind]}","kind":"{p.device.kind}","tenant_id":"{p.device.tenant_id}",'
            f'"region":"{p.device.region}","firmware":"{p.firmware}"}}'
            for p in profiles
        ],
        dtype=object,
    )


def _reading_lines(
    profiles: list[_Profile], day: dt.date, device: np.ndarray, ms: np.ndarray, values: np.ndarray
) -> list[str]:
    """Reading lines (the template json.dumps would give, with values to two decimals), in batches."""
    for p in profiles:
        json_safe([p.device.device_id, p.device.tenant_id, p.device.region, p.device.kind, p.firmware])
    ids = np.frombuffer("".join(p.device.device_id for p in profiles).encode(), dtype=np.uint8).reshape(
        -1, 36
    )
    tails = _tails(profiles)
    lines: list[str] = []
    for start in range(0, len(ms), CHUNK):
        d, t, v = device[start : start + CHUNK], ms[start : start + CHUNK], values[start : start + CHUNK]
        heads = rows_text(
            fixed_rows(
                len(d), b'{"device_id":"', ids[d], b'","timestamp":"', iso_millis_bytes(day, t), b'","value":'
            )
        )
        values_text, ends = number_text(v, 2, fixed=True), tails[d].tolist()
        lines += [f"{h}{x}{e}" for h, x, e in zip(heads, values_text, ends)]
    return lines


def _bad_readings(
    rng: np.random.Generator, kinds: list[str], profiles: list[_Profile], day: dt.date
) -> list[str]:
    """One line per kind: a normal reading of a random device at a random time, with that one defect."""
    m = len(kinds)
    if not m:
        return []
    device = rng.integers(0, len(profiles), m)
    ms = rng.integers(0, DAY_MS, m)
    chosen = [profiles[i] for i in device.tolist()]
    values = np.round(_normal(chosen, ms, rng.uniform(-1, 1, m)), 2).tolist()
    stamps = iso_millis_of_day(day, ms)
    draws = rng.random((m, 3)).tolist()
    unknown = uuid4_strings(rng, m)
    lines = []
    for i, (kind, profile) in enumerate(zip(kinds, chosen)):
        d = profile.device
        u, w, x = draws[i]
        fields = {
            "device_id": f'"{d.device_id}"',
            "timestamp": f'"{stamps[i]}"',
            "value": repr(values[i]),
            "unit": f'"{UNITS[d.kind]}"',
            "kind": f'"{d.kind}"',
            "tenant_id": f'"{d.tenant_id}"',
            "region": f'"{d.region}"',
            "firmware": f'"{profile.firmware}"',
        }
        if kind == "missing_device_id":
            if u < 0.5:
                del fields["device_id"]
            else:
                fields["device_id"] = "null" if w < 0.5 else '""'
        elif kind == "invalid_device_id":
            fields["device_id"] = '"{}"'.format(
                (f"dev-{int(w * 10_000):05d}", d.device_id[:-4], d.device_id.replace("-", ""))[int(u * 3)]
            )
        elif kind == "unparseable_timestamp":
            fields["timestamp"] = json.dumps(BAD_TIMESTAMPS[int(u * len(BAD_TIMESTAMPS))])
        elif kind == "value_not_a_number":
            fields["value"] = BAD_VALUE_TEXTS[int(u * len(BAD_VALUE_TEXTS))]
        elif kind == "value_out_of_range":
            low, high = SENSOR_KINDS[d.kind][0]
            fields["value"] = repr(
                (-999.0, round(high + 0.5 + w * 49.5, 2), round(low - 0.5 - w * 49.5, 2))[int(u * 3)]
            )
        elif kind == "unknown_device":  # a device that is not in the registry (not in the population at all)
            tenant = TENANTS[int(u * len(TENANTS))]
            fields.update(
                device_id=f'"{unknown[i]}"', tenant_id=f'"{tenant.tenant_id}"', region=f'"{tenant.region}"'
            )
        text = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
        if kind == "malformed_json":  # a truncated write: cut somewhere in its first half
            text = text[: 10 + int(x * (len(text) // 2 - 10))]
        lines.append(text)
    return lines


def _scatter(lines: list[str], extra: list[tuple[int, str]]) -> list[str]:
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


def _devices_source(rng: np.random.Generator, registered: list[_Profile], bad_share: float):
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
        index = int(rng.integers(len(lines)))
        if kind == "malformed_json":  # a partial write, retried in full right after
            extra.append((index, lines[index][: int(rng.integers(10, len(lines[index]) // 2))]))
        else:  # the export listed the device twice
            extra.append((min(len(lines), index + 1 + int(rng.integers(20))), lines[index]))
    merged = _scatter(lines, extra)
    expected = {
        "input": len(merged),
        "accepted": len(lines),
        "quarantined": bad["malformed_json"],
        "duplicates": bad["duplicate"],
    }
    return merged, bad, expected


def generate_day(day: dt.date, rows: int, seed: int = 7, bad_share: float = 0.02) -> GeneratedDay:
    """`rows` reading lines for `day` and the day's registry snapshot; the record says what was written."""
    rng = numpy_rng("iot", seed, day)
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    registered = [p for p in registry(seed) if p.installed_at < end_of_day]
    device_lines, device_bad, device_expected = _devices_source(rng, registered, bad_share)
    prefix = day.isoformat()

    n_bad = round(rows * bad_share) if registered else rows
    n_valid = rows - n_bad
    # Plan the anomalies first: an excursion adds two readings (its start and end) to the device's schedule.
    n_excursions = min(MAX_EXCURSIONS, max(1, n_valid // 10_000), len(registered)) if n_valid >= 500 else 0
    excursion_devices = (
        set(rng.choice(len(registered), n_excursions, replace=False).tolist()) if n_excursions else set()
    )
    counts = _allocate(n_valid - 2 * n_excursions, [p.rate for p in registered])

    eligible = [i for i, n in enumerate(counts) if n >= MIN_BASELINE + 1 and i not in excursion_devices]
    n_spikes = min(len(eligible), max(1, round(n_valid * SPIKE_SHARE))) if eligible else 0
    spike_devices = set(rng.choice(eligible, n_spikes, replace=False).tolist()) if n_spikes else set()
    spikes: list[tuple[int, int]] = []  # (device index, ms)
    sustained: list[tuple[int, int]] = []
    schedules, devices, readings = [], [], []
    for index, (profile, count) in enumerate(zip(registered, counts)):
        if count == 0 and index not in excursion_devices:
            continue
        interval = DAY_MS / max(count, 1)
        jitter = interval / 5
        offset = rng.uniform(jitter, interval - jitter)  # with the jitter: every reading inside the day
        schedule = np.clip(
            (offset + np.arange(count) * interval + rng.uniform(-jitter, jitter, count)).astype(np.int64),
            0,
            DAY_MS - 1,
        )
        values = _normal([profile], schedule, rng.uniform(-1, 1, count))
        if index in excursion_devices:
            start = int(rng.integers(DAY_MS - 2 * 3_600_000))
            end = start + int(rng.integers(70, 121)) * 60_000
            taken = set(schedule.tolist())
            while start in taken or end in taken:  # the episode's readings never collide with scheduled ones
                start, end = start + 1, end + 1
            (_, _), (band_low, band_high) = SENSOR_KINDS[profile.device.kind]
            above = rng.random() < 0.5
            reach = profile.amplitude + profile.noise
            schedule = np.append(schedule, [start, end])
            values = np.append(values, [0.0, 0.0])
            inside = np.flatnonzero((schedule >= start) & (schedule <= end))
            shift = rng.uniform(1.0, 3.0, len(inside)) * reach
            values[inside] = band_high + shift if above else band_low - shift
            sustained.extend((index, int(ms)) for ms in schedule[inside])
        if index in spike_devices:
            i = int(rng.integers(len(schedule)))
            (low, high), _ = SENSOR_KINDS[profile.device.kind]
            jump = rng.uniform(10, 14) * profile.sigma
            up = profile.baseline + jump <= high and (rng.random() < 0.5 or profile.baseline - jump < low)
            values[i] = profile.baseline + jump if up else profile.baseline - jump
            spikes.append((index, int(schedule[i])))
        schedules.append(schedule)
        devices.append(np.full(len(schedule), index, dtype=np.int64))
        readings.append(values)
    if schedules:
        ms, device, values = np.concatenate(schedules), np.concatenate(devices), np.concatenate(readings)
        order = np.lexsort((device, ms))  # by time, then device
        lines = _reading_lines(registered, day, device[order], ms[order], values[order])
    else:
        lines = []

    bad = {kind: 0 for kind in READING_BAD_KINDS}
    kinds = _bad_kinds(n_bad, READING_BAD_KINDS)
    n_duplicates = kinds.count("duplicate") if lines else 0
    broken = [kind for kind in kinds if kind != "duplicate"]
    if not lines:
        broken += ["malformed_json"] * kinds.count("duplicate")
    for kind in broken:
        bad[kind] += 1
    bad["duplicate"] += n_duplicates
    # duplicates: resends of valid readings, shortly after them
    copied = rng.integers(0, max(len(lines), 1), n_duplicates)
    after = np.minimum(len(lines), copied + 1 + rng.integers(0, 50, n_duplicates))
    positions = rng.integers(0, len(lines) + 1, len(broken))
    extra = list(zip(after.tolist(), [lines[i] for i in copied.tolist()])) + list(
        zip(positions.tolist(), _bad_readings(rng, broken, registered or registry(seed), day))
    )
    lines = _scatter(lines, extra)
    files = split_files(lines)
    quarantined = sum(n for kind, n in bad.items() if kind != "duplicate")
    ids = [p.device.device_id for p in registered]
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
            "spike_readings": _stamped(ids, day, spikes),
            "sustained_readings": _stamped(ids, day, sustained),
        },
    }
    return GeneratedDay(day=day, sources={"readings": files, "devices": [device_lines]}, record=record)


def _stamped(ids: list[str], day: dt.date, readings: list[tuple[int, int]]) -> list[list[str]]:
    """[device_id, timestamp] of each (device index, ms), sorted."""
    stamps = iso_millis_of_day(day, np.array([ms for _, ms in readings], dtype=np.int64))
    return sorted([ids[d], t] for (d, _), t in zip(readings, stamps))
