"""Files in the lake root (landing files, generator records), on S3 or a local path."""

from __future__ import annotations

from urllib.parse import urlparse

from pyarrow import fs

from lakehouse.config import LakehouseConfig


def filesystem(config: LakehouseConfig) -> fs.FileSystem:
    if not config.is_s3:
        return fs.LocalFileSystem()
    env = config.storage_env
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
    return uri[len("s3://"):] if uri.startswith("s3://") else uri


def to_uri(config: LakehouseConfig, path: str) -> str:
    return f"s3://{path}" if config.is_s3 else path


def list_files(config: LakehouseConfig, uri: str, suffix: str = "") -> list[str]:
    """URIs of the files directly under `uri` (sorted; empty when the folder is missing)."""
    infos = filesystem(config).get_file_info(fs.FileSelector(fs_path(uri), allow_not_found=True))
    return sorted(to_uri(config, info.path) for info in infos
                  if info.type == fs.FileType.File and info.path.endswith(suffix))


def write_text(config: LakehouseConfig, uri: str, text: str) -> None:
    filesystem_ = filesystem(config)
    path = fs_path(uri)
    if not config.is_s3:
        filesystem_.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem_.open_output_stream(path) as out:
        out.write(text.encode())


def read_bytes(config: LakehouseConfig, uri: str) -> bytes:
    with filesystem(config).open_input_stream(fs_path(uri)) as stream:
        return stream.read()


def read_text(config: LakehouseConfig, uri: str) -> str:
    return read_bytes(config, uri).decode()


def delete_dir(config: LakehouseConfig, uri: str) -> None:
    filesystem_ = filesystem(config)
    if filesystem_.get_file_info(fs_path(uri)).type != fs.FileType.NotFound:
        filesystem_.delete_dir(fs_path(uri))
