"""Files the app writes to its storage (Django's default_storage): streamed, folders complete or invisible.

The same calls work on the local signed storage (demo, tests, one-box installs) and on an S3-compatible
bucket (production, and the loopback S3 server of the tests), so a feature that stores a data-set export
or a model checkpoint never names the backend:

- `store_stream`: a local file or an open binary file into storage under an exact name, read in chunks
  (the S3 backend sends large files as a multipart upload; nothing holds the whole file in memory).
- `store_folder`: every file of a local folder under a prefix, then a ``COMPLETE`` marker listing them,
  written LAST. A reader (`fetch_folder`, `folder_complete`) trusts a prefix only when its marker exists,
  so a writer stopped halfway (worker killed, storage down) leaves nothing that looks complete. Writing a
  prefix again first removes its marker.
- `fetch_folder`: a complete prefix into a local folder (a temporary one by default), in chunks: a worker
  on another machine reads what this one wrote, with no shared disk.
- `signed_url`: a short-lived link for a browser to download a stored file (S3 presigned URL, or the
  local storage's HMAC link served by core.media), optionally as an attachment with a file name.

Storage errors are not caught here: a job that writes through these fails with the backend's error, which
`storage_failure` (used by core.jobs) turns into a job error naming the store that could not be reached.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import Storage, default_storage

COMPLETE_MARKER = "COMPLETE"
#: Bytes per read when copying between a local file and storage.
CHUNK_BYTES = 1024 * 1024


class StorageNameTaken(RuntimeError):
    """The storage saved a file under another name than asked (it refused to overwrite)."""


class IncompleteFolder(FileNotFoundError):
    """A stored prefix has no COMPLETE marker: it is being written, was abandoned halfway, or is missing."""


def _storage(storage: Storage | None) -> Storage:
    return default_storage if storage is None else storage


@contextmanager
def _opened(source: str | Path | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            yield handle
    else:
        yield source


def store_stream(
    name: str, source: str | Path | IO[bytes], *, storage: Storage | None = None, replace: bool = True
) -> str:
    """Store a local file (path) or an open binary file under exactly `name`, read in chunks.

    An existing file of that name is replaced (``replace=False``: kept, and StorageNameTaken raised).
    Returns the stored name."""
    target = _storage(storage)
    if target.exists(name):
        if not replace:
            raise StorageNameTaken(f"{name!r} already exists in storage")
        target.delete(name)
    with _opened(source) as handle:
        stored = target.save(name, File(handle, name=Path(name).name))
    if stored != name:  # a concurrent writer took the name between our delete and save
        target.delete(stored)
        raise StorageNameTaken(f"{name!r} was written concurrently; stored copy {stored!r} removed")
    return stored


def store_folder(folder: str | Path, prefix: str, *, storage: Storage | None = None) -> list[str]:
    """Every file under `folder` stored under `prefix/`, then the COMPLETE marker (the file list) last.

    Returns the stored names, marker excluded. A prefix written before loses its marker first, so during
    the rewrite (and after a failed one) it reads as incomplete."""
    target = _storage(storage)
    prefix = prefix.rstrip("/")
    marker = f"{prefix}/{COMPLETE_MARKER}"
    if target.exists(marker):
        target.delete(marker)
    root = Path(folder)
    relatives = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    if COMPLETE_MARKER in relatives:
        raise ValueError(f"{root} holds a file named {COMPLETE_MARKER}, the name of the completion marker")
    names = [store_stream(f"{prefix}/{relative}", root / relative, storage=target) for relative in relatives]
    with tempfile.TemporaryFile() as listing:
        listing.write("".join(f"{r}\n" for r in relatives).encode())
        listing.seek(0)
        store_stream(marker, listing, storage=target)
    return names


def folder_files(prefix: str, *, storage: Storage | None = None) -> list[str]:
    """The files of a complete stored prefix (relative names); IncompleteFolder when its marker is missing."""
    target = _storage(storage)
    marker = f"{prefix.rstrip('/')}/{COMPLETE_MARKER}"
    if not target.exists(marker):
        raise IncompleteFolder(
            f"{prefix!r} in storage is incomplete or missing (no {COMPLETE_MARKER} marker)"
        )
    with target.open(marker, "rb") as handle:
        return [line for line in handle.read().decode().splitlines() if line]


def folder_complete(prefix: str, *, storage: Storage | None = None) -> bool:
    """Whether `prefix` was stored completely (its COMPLETE marker exists)."""
    return _storage(storage).exists(f"{prefix.rstrip('/')}/{COMPLETE_MARKER}")


def fetch_file(name: str, into: str | Path, *, storage: Storage | None = None) -> Path:
    """Copy one stored file to the local path `into`, in chunks."""
    path = Path(into)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _storage(storage).open(name, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK_BYTES)
    return path


def fetch_folder(prefix: str, into: str | Path | None = None, *, storage: Storage | None = None) -> Path:
    """A complete stored prefix copied into `into` (a new temporary folder when None); returns the folder.

    Refuses (IncompleteFolder) a prefix without its COMPLETE marker; the caller removes a temporary folder
    it asked for."""
    target = _storage(storage)
    files = folder_files(prefix, storage=target)
    root = Path(tempfile.mkdtemp(prefix="vp-fetch-")) if into is None else Path(into)
    root.mkdir(parents=True, exist_ok=True)
    for relative in files:
        if relative.startswith("/") or ".." in Path(relative).parts:
            raise ValueError(f"{prefix!r}: marker lists {relative!r}, outside the folder")
        fetch_file(f"{prefix.rstrip('/')}/{relative}", root / relative, storage=target)
    return root


def signed_url(
    name: str, *, download_as: str | None = None, expire_s: int | None = None, storage: Storage | None = None
) -> str:
    """A short-lived browser link to a stored file; with `download_as`, the browser saves it under that name.

    On S3 the presigned URL carries the attachment header (response-content-disposition) and `expire_s`
    (default: the storage's querystring_expire). The local signed storage's links last MEDIA_URL_MAX_AGE_S
    and are served by core.media, which names the file itself."""
    target = _storage(storage)
    url = getattr(target, "url")  # noqa: B009 - Storage.url's signature differs per backend
    if hasattr(target, "bucket_name"):  # django-storages S3Storage
        parameters: dict[str, Any] = {}
        if download_as:
            safe = download_as.replace('"', "")
            parameters["ResponseContentDisposition"] = f'attachment; filename="{safe}"'
        return str(url(name, parameters=parameters or None, expire=expire_s))
    return str(url(name))


def storage_failure(exc: BaseException) -> str | None:
    """The job error for a failure to reach the object store, naming the endpoint (never a key); None when
    `exc` is not one (connection refused or reset, timeout, the store answering 5xx)."""
    try:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
    except ImportError:  # pragma: no cover - django-storages[s3] is a requirement
        return None
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status < 500:
            return None
    elif not isinstance(exc, (ConnectionError, HTTPClientError)):
        return None
    return (
        f"object storage unavailable ({type(exc).__name__}: {exc}); nothing was marked complete, "
        "retry the job once the store is back"
    )
