"""Copy a whole lake, every object under its root, from one S3 to another (the embedded one to AWS S3, or one
bucket to another), with boto3.

Delta tables move as files: their logs name data files relative to the table, so a byte-for-byte copy under
another root is the same table, versions and history included (tests/test_infra_move_lake.py). Stop every
writer first (pause the schedules and sensors, let runs finish): a commit made during the copy may be half in
the copy. Usage, with the source's settings in the environment (`eval "$(make -s env)"`) and the target's
credentials in a boto3 profile:
    python -m infra.move_lake s3://lakehouse s3://acme-lakehouse/prod --target-profile prod
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import boto3


def _split(root: str) -> tuple[str, str]:
    bucket, _, prefix = root.removeprefix("s3://").rstrip("/").partition("/")
    return bucket, f"{prefix}/" if prefix else ""


def objects(client, root: str) -> Iterator[tuple[str, int]]:
    """(key below the root, size) of every object under `root`."""
    bucket, prefix = _split(root)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"][len(prefix) :], item["Size"]


def copy_lake(source, target, source_root: str, target_root: str) -> int:
    """Copy every object of `source_root` (client `source`) to the same key under `target_root` (client
    `target`), streamed, so the two may be different services; returns the number of objects copied."""
    (source_bucket, source_prefix), (target_bucket, target_prefix) = _split(source_root), _split(target_root)
    count = 0
    for key, _size in objects(source, source_root):
        body = source.get_object(Bucket=source_bucket, Key=source_prefix + key)["Body"]
        target.upload_fileobj(body, target_bucket, target_prefix + key)
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.move_lake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source_root", help="s3://bucket[/prefix], read with the AWS_* variables")
    parser.add_argument("target_root", help="s3://bucket[/prefix], empty")
    parser.add_argument("--target-profile", help="boto3 profile of the target (default: the default chain)")
    parser.add_argument("--target-endpoint", help="the target's endpoint URL (unset for AWS S3)")
    args = parser.parse_args(argv)
    source = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    target = boto3.Session(profile_name=args.target_profile).client("s3", endpoint_url=args.target_endpoint)
    if next(objects(target, args.target_root), None) is not None:
        parser.error(f"{args.target_root} is not empty")
    print(f"copied {copy_lake(source, target, args.source_root, args.target_root)} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
