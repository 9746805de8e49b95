"""The embedded S3's disk: a new bucket takes one volume, not seven, and deleted objects give their space
back when asked. A bench that left 41 GB behind once starved the regional buckets of volumes."""

from __future__ import annotations

import os
import time
import uuid

import boto3


def _client(server):
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
    )


def _volumes(collection: str) -> dict[str, int]:
    from infra import local_s3

    return {
        path.name: path.stat().st_size for path in (local_s3.state_dir() / "data").glob(f"{collection}_*.dat")
    }


def test_a_new_bucket_takes_one_volume_and_a_vacuum_gives_deleted_space_back(s3_server):
    from infra import local_s3

    bucket = f"volumes-{uuid.uuid4().hex[:8]}"
    client = _client(s3_server)
    client.create_bucket(Bucket=bucket)
    # Random bytes: SeaweedFS compresses what compresses.
    client.put_object(Bucket=bucket, Key="bench/part-0", Body=os.urandom(8_000_000))
    volumes = _volumes(bucket)
    assert len(volumes) == 1, volumes
    assert sum(volumes.values()) > 8_000_000

    client.delete_object(Bucket=bucket, Key="bench/part-0")
    deadline = time.monotonic() + 30
    while True:  # the filer deletes an object's chunks in the background
        local_s3.vacuum()
        size = sum(_volumes(bucket).values())
        if size < 1_000_000 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert size < 1_000_000
