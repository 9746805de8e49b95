"""Files in the lake root (landing files, generator records), on S3 or a local path.

Reading and writing go through pyarrow's filesystem; listing and deleting objects in bulk (retention)
through boto3 on S3, which deletes a thousand keys per request."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from urllib.parse import urlparse

from pyarrow import fs

from lakehouse.config import LakehouseConfig


def filesystem(config: LakehouseConfig) -> fs.FileSystem:
    if not config.is_s3:
        return fs.LocalFileSystem()
    return _s3_filesystem(_credentials(config))


def _credentials(config: LakehouseConfig) -> tuple[tuple[str, str], ...]:
    """The storage settings as a cache key: one client per endpoint and credentials, so that new credentials
    (a rotated session token) get a client of their own."""
    return tuple(sorted(config.storage_env.items()))


# A client costs milliseconds to build (boto3's ~7 ms): a step lists and deletes dozens of times.
@functools.lru_cache(maxsize=8)
def _s3_filesystem(credentials: tuple[tuple[str, str], ...]) -> fs.S3FileSystem:
    env = dict(credentials)
    endpoint = urlparse(env["AWS_ENDPOINT_URL"]) if env.get("AWS_ENDPOINT_URL") else None
    return fs.S3FileSystem(
        access_key=env.get("AWS_ACCESS_KEY_ID"),
        secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
        session_token=env.get("AWS_SESSION_TOKEN"),
        region=env.get("AWS_REGION", "us-east-1"),
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        allow_bucket_creation=False,
    )


def fs_path(uri: str) -> str:
    """The path pyarrow's filesystem wants for a lake URI."""
    return uri[len("s3://") :] if uri.startswith("s3://") else uri


def to_uri(config: LakehouseConfig, path: str) -> str:
    return f"s3://{path}" if config.is_s3 else path


def list_files(config: LakehouseConfig, uri: str, suffix: str = "") -> list[str]:
    """URIs of the files directly under `uri` (sorted; empty when the folder is missing)."""
    infos = filesystem(config).get_file_info(fs.FileSelector(fs_path(uri), allow_not_found=True))
    return sorted(
        to_uri(config, info.path)
        for info in infos
        if info.type == fs.FileType.File and info.path.endswith(suffix)
    )


def list_dirs(config: LakehouseConfig, uri: str) -> list[str]:
    """URIs of the folders directly under `uri` (sorted; empty when it is missing)."""
    infos = filesystem(config).get_file_info(fs.FileSelector(fs_path(uri), allow_not_found=True))
    return sorted(to_uri(config, info.path) for info in infos if info.type == fs.FileType.Directory)


def write_bytes(config: LakehouseConfig, uri: str, content: bytes) -> None:
    filesystem_ = filesystem(config)
    path = fs_path(uri)
    if not config.is_s3:
        filesystem_.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem_.open_output_stream(path) as out:
        out.write(content)


def write_text(config: LakehouseConfig, uri: str, text: str) -> None:
    write_bytes(config, uri, text.encode())


def read_bytes(config: LakehouseConfig, uri: str) -> bytes:
    with filesystem(config).open_input_stream(fs_path(uri)) as stream:
        return stream.read()


def read_text(config: LakehouseConfig, uri: str) -> str:
    return read_bytes(config, uri).decode()


def read_text_if_exists(config: LakehouseConfig, uri: str) -> str | None:
    try:
        return read_text(config, uri)
    except FileNotFoundError:
        return None


def delete_dir(config: LakehouseConfig, uri: str) -> None:
    """Remove a folder and everything under it (on S3: its objects, by bulk deletes)."""
    if config.is_s3:
        delete_files(config, sorted(list_tree(config, uri)))
        return
    filesystem_ = filesystem(config)
    if filesystem_.get_file_info(fs_path(uri)).type != fs.FileType.NotFound:
        filesystem_.delete_dir(fs_path(uri))


def _s3_client(config: LakehouseConfig):
    return _boto3_client(_credentials(config))


@functools.lru_cache(maxsize=8)
def _boto3_client(credentials: tuple[tuple[str, str], ...]):
    import boto3
    from botocore.config import Config

    env = dict(credentials)
    return boto3.client(
        "s3",
        endpoint_url=env.get("AWS_ENDPOINT_URL"),
        region_name=env.get("AWS_REGION"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        config=Config(s3={"addressing_style": "path"}),
    )


@dataclass(frozen=True)
class StoredObject:
    size: int  # bytes
    modified: dt.datetime  # last-modified time, UTC


def list_objects(config: LakehouseConfig, uri: str) -> dict[str, StoredObject]:
    """URI -> size and last-modified time of every file under `uri`, at any depth (retention ages)."""
    if config.is_s3:
        bucket, _, prefix = fs_path(uri).partition("/")
        found = {}
        for page in (
            _s3_client(config).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        ):
            found.update(
                {
                    f"s3://{bucket}/{item['Key']}": StoredObject(item["Size"], item["LastModified"])
                    for item in page.get("Contents", [])
                }
            )
        return found
    infos = filesystem(config).get_file_info(fs.FileSelector(uri, recursive=True, allow_not_found=True))
    return {
        info.path: StoredObject(info.size, info.mtime.astimezone(dt.UTC))
        for info in infos
        if info.type == fs.FileType.File
    }


def list_tree(config: LakehouseConfig, uri: str) -> dict[str, int]:
    """URI -> size of every file under `uri`, at any depth."""
    return {path: stored.size for path, stored in list_objects(config, uri).items()}


def delete_files(config: LakehouseConfig, uris: list[str]) -> None:
    if config.is_s3:
        client = _s3_client(config)
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            bucket, _, key = fs_path(uri).partition("/")
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                answer = client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True},
                )
                if answer.get("Errors"):
                    raise OSError(
                        f"S3 refused to delete {len(answer['Errors'])} object(s): {answer['Errors'][:3]}"
                    )
        return
    for uri in uris:
        filesystem(config).delete_file(uri)
