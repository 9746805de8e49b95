"""Sensors: a domain's daily partition runs when its landing files appear or change."""

import hashlib
import json

import dagster as dg
from pyarrow import fs

from lakehouse import storage
from lakehouse.config import LakehouseConfig


def landing_fingerprints(config: LakehouseConfig, domain: str) -> dict[str, str]:
    """Partition key -> a fingerprint of its landing files (names, sizes, modification times)."""
    filesystem = storage.filesystem(config)
    folders = filesystem.get_file_info(
        fs.FileSelector(storage.fs_path(config.landing_uri(domain)), allow_not_found=True)
    )
    found = {}
    for folder in folders:
        if folder.type != fs.FileType.Directory or not folder.base_name.startswith("dt="):
            continue
        files = sorted(
            (f.base_name, f.size, str(f.mtime))
            for f in filesystem.get_file_info(fs.FileSelector(folder.path))
            if f.type == fs.FileType.File
        )
        if files:
            found[folder.base_name[3:]] = hashlib.sha1(json.dumps(files).encode()).hexdigest()[:16]
    return found


def landing_sensor(domain: str, job, partitions: dg.PartitionsDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{domain}_landing_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Runs the {domain} partitions whose landing files are new or changed.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        seen = json.loads(context.cursor) if context.cursor else {}
        current = landing_fingerprints(LakehouseConfig.from_env(), domain)
        valid = set(partitions.get_partition_keys(dynamic_partitions_store=context.instance))
        changed = sorted(day for day, print_ in current.items() if seen.get(day) != print_ and day in valid)
        for day in changed:
            yield dg.RunRequest(partition_key=day, run_key=f"{domain}-{day}-{current[day]}")
        context.update_cursor(json.dumps(current))

    return _sensor
