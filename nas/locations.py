"""Where a data root or an audio folder lives: a local folder, or a URL that fsspec reaches.

A remote location is a `UPath` (universal-pathlib: pathlib's API over fsspec), so the
layouts keep their shape on a bucket. Endpoint and credentials are never ours to hold:
s3fs and gcsfs find them where every client does (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, profiles, instance roles), so no config, parameter or log line
carries them.

A bucket has no rename and objects appear one by one, so a product there is published by
writing its commit object last, with a conditional write (`create_new`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import threading
from pathlib import Path

from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")
# botocore's, aiohttp's and urllib3's names for "nobody answered at the endpoint"
CONNECTION_ERRORS = re.compile(r"\b(EndpointConnectionError|ConnectTimeoutError|ConnectionClosedError|"
                               r"ClientConnectorError|ServerDisconnectedError|NewConnectionError)\b")


class RootError(ValueError):
    """A data root or audio location that cannot be used; the message names the URL and why."""


def is_url(value: str | Path) -> bool:
    text = str(value)
    return "://" in text and text.split("://", 1)[0] not in LOCAL_PROTOCOLS


def location(value: str | Path) -> Path:
    """A path object for a local path or a URL (a UPath, which quacks as a Path)."""
    if isinstance(value, UPath):
        return value
    if not is_url(value):
        return Path(value)
    # No cached listings: other machines write here too, and a stale listing would say a
    # commit object is missing when it is not.
    options = {"use_listings_cache": False}
    if str(value).startswith(("s3://", "s3a://")):
        options["config_kwargs"] = {"retries": retries()}
    return UPath(str(value), **options)


def retries() -> dict:
    """botocore's standard retries (exponential back-off with jitter, connection errors
    included): 6 attempts ride out an endpoint that is gone for up to ~15 s; AWS_MAX_ATTEMPTS,
    where set, decides as it does for every AWS client."""
    return {"mode": "standard", "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS") or 6)}


def unreachable(error: BaseException | None) -> bool:
    """Whether an error, or one it came from, is an object store that did not answer (by its
    type, or by its text where a Beam worker's error reaches us as a RuntimeError's message)."""
    while error is not None:
        if isinstance(error, ConnectionError) or CONNECTION_ERRORS.search(f"{type(error).__name__} {error}"):
            return True
        error = error.__cause__ or error.__context__
    return False


def resolve_root(value: str | Path) -> Path:
    """The data root a flow parameter or option names: a URL as it is, a local folder made absolute."""
    path = location(value)
    return path if is_remote(path) else path.resolve()


def is_remote(path: str | Path) -> bool:
    return isinstance(path, UPath) and path.protocol not in LOCAL_PROTOCOLS


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    """The sha256 of a local file or a bucket's object, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def create_new(path: Path, data: bytes) -> bool:
    """Write `data` to `path` only if no object is there (S3: `If-None-Match: *`); True if
    this call created it. Of two writers racing, exactly one gets True."""
    try:
        with path.fs.open(path.path, "xb") as f:
            f.write(data)
    except FileExistsError:
        return False
    return True


REACH_SECONDS = 30.0  # an endpoint that accepts the connection and never answers: the clients' own retries take minutes
# Bucket names by protocol: S3's rule, and GCS's (underscores too; names with dots, up to 222
# characters, are not checked here)
BUCKET_NAMES = {"s3": re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
                "gs": re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]|[a-z0-9][a-z0-9._-]{2,220}[a-z0-9]")}


def check_reachable(path: Path) -> None:
    """Raise RootError naming the URL if its bucket does not exist, the credentials are refused
    or the endpoint cannot be reached: before any work, and without writing anything."""
    if not is_remote(path):
        return
    name = path.path.split("/", 1)[0]
    bucket = f"{path.protocol}://{name}"
    rule = BUCKET_NAMES.get({"gcs": "gs"}.get(path.protocol, path.protocol))
    if rule and not rule.fullmatch(name):
        raise RootError(f"{path}: {name!r} is not a valid bucket name (3 to 63 lower-case letters, digits, dots and "
                        f"hyphens{', underscores' if path.protocol != 's3' else ''}, beginning and ending with a "
                        "letter or digit)")
    seconds = float(os.environ.get("NAS_REACH_SECONDS", REACH_SECONDS))
    try:
        _within(seconds, lambda: path.fs.ls(name, refresh=True))
    except _NoAnswer:
        raise RootError(f"{path}: {endpoint_origin()} did not answer within {seconds:g} s") from None
    except FileNotFoundError:
        raise RootError(f"{path}: bucket {bucket} does not exist") from None
    except PermissionError as error:
        raise RootError(f"{path}: access to {bucket} refused ({_first_line(error)}); check the credentials") from None
    except Exception as error:  # OSError, botocore's connection errors; the text may name the endpoint
        if type(error).__name__ == "NoCredentialsError":
            raise RootError(f"{path}: no credentials for the object store: set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE") from None
        raise RootError(f"{path}: cannot reach {endpoint_origin()} ({type(error).__name__})") from None


class _NoAnswer(Exception):
    """No result within the time given (`_within`)."""


def _within(seconds: float, call):
    """`call()`'s result, or _NoAnswer once `seconds` have passed without one. The call goes
    on in a daemon thread, which the command's exit does not wait for."""
    values, errors = [], []

    def run() -> None:
        try:
            values.append(call())
        except BaseException as error:  # handed to the caller
            errors.append(error)

    thread = threading.Thread(target=run, name="nas-reach", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise _NoAnswer
    if errors:
        raise errors[0]
    return values[0]


NO_SPACE = "No space left on device"  # ENOSPC's text, which survives being wrapped (Beam re-raises it as text)


def out_of_space(error: BaseException) -> bool:
    """Whether a disk filled: ENOSPC anywhere in the error's chain, or in its text."""
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or NO_SPACE in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def fullest(paths: list[Path]) -> Path:
    """Of local folders (or their nearest existing parents), the one on the disk with the least free space."""
    def free(path: Path) -> int:
        while not path.exists():
            path = path.parent
        return shutil.disk_usage(path).free
    return min(paths, key=free)


def endpoint_origin() -> str:
    """The object store's endpoint as a message may name it: where it was set, never its URL."""
    return "the endpoint set in AWS_ENDPOINT_URL" if os.environ.get("AWS_ENDPOINT_URL") else "the object store"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
