"""Safe reading of image folders and archives (zip, tar, tar.gz) from untrusted data sets.

Every member name is checked before anything is extracted or read: no absolute paths, no ``..`` parts, no
symlinks or hard links, no device files. A whole archive is checked for bombs from its directory first:
the number of entries, each entry's size, the total size, and (zip) the compression ratio of each entry.
Reading then returns member bytes by name without writing them to disk.
"""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.datasets.errors import DatasetError


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what an archive may hold; the defaults suit image data sets of a few GB."""

    max_entries: int = 200_000
    max_entry_bytes: int = 50 * 1024 * 1024
    max_total_bytes: int = 20 * 1024 * 1024 * 1024
    max_ratio: float = 200.0


def safe_member_name(name: str) -> str:
    """The normalised relative path of an archive member or data set path; DatasetError if it could escape."""
    raw = name.replace("\\", "/")
    if not raw or raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise DatasetError(f"path {name!r} is absolute; paths must stay inside the data set")
    parts = PurePosixPath(raw).parts
    if ".." in parts:
        raise DatasetError(f"path {name!r} leaves the data set folder ('..')")
    clean = posixpath.normpath(raw)
    if clean in ("", "."):
        raise DatasetError(f"path {name!r} names no file")
    return clean


def safe_folder_path(root: Path, name: str) -> Path:
    """`name` resolved inside folder `root`; refuses escapes, including through symlinks."""
    clean = safe_member_name(name)
    base = root.resolve()
    candidate = base / clean
    # A symlink anywhere on the way could point outside: check each existing component.
    probe = base
    for part in PurePosixPath(clean).parts:
        probe = probe / part
        if probe.is_symlink():
            raise DatasetError(f"path {name!r} is a symbolic link; links are not followed")
    resolved = candidate.resolve()
    if resolved != base and base not in resolved.parents:
        raise DatasetError(f"path {name!r} leaves the data set folder")
    return resolved


class ArchiveReader:
    """Checked, read-only access to the files of a zip or tar archive, by member name."""

    def __init__(self, path: str | Path, *, limits: ArchiveLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or ArchiveLimits()
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, object] = {}
        label = self.path.name
        try:
            if zipfile.is_zipfile(self.path):
                self._zip = zipfile.ZipFile(self.path)
                self._check_zip(label)
            elif tarfile.is_tarfile(self.path):
                self._tar = tarfile.open(self.path)  # noqa: SIM115 - closed by close()
                self._check_tar(label)
            else:
                raise DatasetError(f"{label} is neither a zip nor a tar archive")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            self.close()
            raise DatasetError(f"{label} is a damaged archive: {exc}") from exc
        except DatasetError:
            self.close()
            raise

    def _count(self, label: str, n: int) -> None:
        if n > self.limits.max_entries:
            raise DatasetError(f"{label} holds more than {self.limits.max_entries:,} entries")

    def _check_zip(self, label: str) -> None:
        assert self._zip is not None
        infos = self._zip.infolist()
        self._count(label, len(infos))
        total = 0
        for info in infos:
            name = safe_member_name(info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == 0o120000:
                raise DatasetError(f"{label}: entry {info.filename!r} is a symbolic link")
            if info.is_dir():
                continue
            self._entry_size(label, info.filename, info.file_size)
            if info.file_size > 1024 and info.file_size > self.limits.max_ratio * max(1, info.compress_size):
                raise DatasetError(
                    f"{label}: entry {info.filename!r} expands {info.file_size / max(1, info.compress_size):.0f}"
                    f"x (limit {self.limits.max_ratio:.0f}x): a compression bomb"
                )
            total += info.file_size
            self._total(label, total)
            self._members[name] = info

    def _check_tar(self, label: str) -> None:
        assert self._tar is not None
        total, n = 0, 0
        for info in self._tar:  # reads headers only, streaming through a compressed tar once
            n += 1
            self._count(label, n)
            name = safe_member_name(info.name)
            if info.issym() or info.islnk():
                raise DatasetError(f"{label}: entry {info.name!r} is a link; links are not allowed")
            if info.isdir():
                continue
            if not info.isfile():
                raise DatasetError(f"{label}: entry {info.name!r} is not a regular file")
            self._entry_size(label, info.name, info.size)
            total += info.size
            self._total(label, total)
            self._members[name] = info

    def _entry_size(self, label: str, name: str, size: int) -> None:
        if size > self.limits.max_entry_bytes:
            raise DatasetError(
                f"{label}: entry {name!r} is {size:,} bytes; the limit is {self.limits.max_entry_bytes:,}"
            )

    def _total(self, label: str, total: int) -> None:
        if total > self.limits.max_total_bytes:
            raise DatasetError(f"{label} expands to more than {self.limits.max_total_bytes:,} bytes")

    def names(self) -> list[str]:
        return list(self._members)

    def __contains__(self, name: str) -> bool:
        return safe_member_name(name) in self._members

    def read(self, name: str) -> bytes:
        """The bytes of member `name` (a KeyError-free DatasetError when it is missing)."""
        clean = safe_member_name(name)
        info = self._members.get(clean)
        if info is None:
            raise DatasetError(f"{name!r} is not in {self.path.name}")
        if self._zip is not None:
            assert isinstance(info, zipfile.ZipInfo)
            with self._zip.open(info) as handle:
                data = handle.read(self.limits.max_entry_bytes + 1)
        else:
            assert self._tar is not None and isinstance(info, tarfile.TarInfo)
            member = self._tar.extractfile(info)
            if member is None:
                raise DatasetError(f"{name!r} in {self.path.name} is not a regular file")
            data = member.read(self.limits.max_entry_bytes + 1)
        if len(data) > self.limits.max_entry_bytes:
            raise DatasetError(f"{name!r} in {self.path.name} is larger than its header says")
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
