"""Uploaded generators: checked in memory, then kept per person under their content hash, within quotas, aged out.

No byte a visitor sends reaches the disk before `checkpoint.check_upload` has accepted the file (only the attempt is
counted, in a ledger of hashes), no name a visitor chose becomes a path (the folder is a hash of the person's key,
the file a hash of its content), and uploads stay within the rate limits and quotas of `settings.Settings` (per
person, per client address and subnet, in total) in every mode, not only on the demo.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..checkpoint import atomic_write, atomic_write_text, check_upload
from .addresses import subnet
from .settings import Settings

SUFFIX = ".safetensors"
_MB = 1024 * 1024
_LOCK = ".lock"


class UploadError(PermissionError):
    """An upload this person may not store (signed out, or over a quota); the message says which and why."""


def uploads_dir(home: Path) -> Path:
    """Where every upload lives: `GAN_HOME/uploads`."""
    return Path(home) / "uploads"


def person_dir(home: Path, owner_key: str) -> Path:
    """One person's upload folder, named by a hash of their key, so no typed name or email becomes a path."""
    return uploads_dir(home) / f"u-{hashlib.sha256(owner_key.encode()).hexdigest()[:32]}"


def store_upload(home: Path, owner_key: str, data: bytes, settings: Settings, now: float | None = None,
                 address: str = "") -> Path:
    """Check `data` in memory, then keep it as `owner_key`'s upload within the quotas; returns the file's path.
    `address` is the client's IP address ('' unknown: the CLI, a local browser), which the rate limits and the
    per-address quota also key on.

    The same bytes this person stored before are reused (touched, not checked or counted again). Anything else is
    first counted against the upload rate limits (an hour's attempts per person, per address and per subnet),
    before it is parsed at all, since checking a file costs seconds of CPU whether it is accepted or not; then
    checked, then stored within the quotas (per person, per address, in total). Raises UploadError (signed out,
    over a rate limit or a quota) or checkpoint.CheckpointError (not an acceptable file), and then nothing has been
    written but the attempt."""
    if not owner_key:
        raise UploadError("sign in to upload a generator; signed-out visitors can use runs and pretrained ones")
    at = time.time() if now is None else now
    path = person_dir(home, owner_key) / f"{hashlib.sha256(data).hexdigest()[:32]}{SUFFIX}"
    root = uploads_dir(home)
    with _locked(root):
        if _reused(path, data, at):
            return path
        _admit(root, owner_key, address, settings, at)  # the rate limits, before a byte is parsed
    check_upload(data, settings.max_upload_mb)  # a refused file never touches the disk
    prune_uploads(home, settings, now=at)  # expired uploads free their quota first (it takes the lock itself)
    with _locked(root):  # two uploads at once must not both pass the quota that only one fits
        if _reused(path, data, at):
            return path
        mine = sum(_size(p) for p in _files(path.parent))
        total = sum(_size(p) for p in _all_files(home))
        if mine + len(data) > settings.upload_quota_mb_per_user * _MB:
            raise UploadError(f"upload quota: your uploads would take {(mine + len(data)) / _MB:.1f} MB, more than "
                              f"the {settings.upload_quota_mb_per_user:g} MB per person "
                              f"(GAN_UPLOAD_QUOTA_MB_PER_USER); uploads are removed after "
                              f"{settings.upload_keep_days:g} day(s)")
        ledger = _read_ledger(root)
        there = _address_bytes(root, ledger, _tag(address)) if address else 0
        if address and there + len(data) > settings.upload_quota_mb_per_address * _MB:
            raise UploadError(f"upload quota: uploads from your network address would take "
                              f"{(there + len(data)) / _MB:.1f} MB, more than the "
                              f"{settings.upload_quota_mb_per_address:g} MB per address "
                              f"(GAN_UPLOAD_QUOTA_MB_PER_ADDRESS); uploads are removed after "
                              f"{settings.upload_keep_days:g} day(s)")
        if total + len(data) > settings.upload_quota_mb_total * _MB:
            raise UploadError(f"upload quota: uploads on this server would take {(total + len(data)) / _MB:.1f} MB, "
                              f"more than the {settings.upload_quota_mb_total:g} MB allowed in total "
                              f"(GAN_UPLOAD_QUOTA_MB_TOTAL); try again after older uploads expire")
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        os.utime(path, (at, at))
        if address:
            ledger["stored"].append([at, _tag(address), path.relative_to(root).as_posix(), len(data)])
            _write_ledger(root, ledger, at)
    return path


def _reused(path: Path, data: bytes, t: float) -> bool:
    """Whether this person stored these bytes before (then the file ages from `t`, and is not counted twice)."""
    if not data or _size(path) != len(data):  # _size is 0 for a missing file
        return False
    os.utime(path, (t, t))
    return True


_LEDGER = ".ledger.json"  # recent upload attempts, and which address stored which file (tags, not addresses)
_HOUR = 3600.0


def _tag(text: str) -> str:
    """What the ledger keeps of a key or an address: a hash, so the folder lists no visitor's address or key."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read_ledger(root: Path) -> dict[str, list]:
    try:
        ledger = json.loads((root / _LEDGER).read_text())
    except (OSError, ValueError):  # none yet (or unreadable: written atomically, so only by hand): start afresh
        ledger = {}
    if not isinstance(ledger, dict):
        ledger = {}
    return {k: list(ledger[k]) if isinstance(ledger.get(k), list) else [] for k in ("attempts", "stored")}


def _write_ledger(root: Path, ledger: dict[str, list], now: float) -> None:
    """Write the ledger without attempts older than an hour and files since removed."""
    ledger["attempts"] = [a for a in ledger["attempts"] if now - a[0] < _HOUR]
    ledger["stored"] = [s for s in ledger["stored"] if _size(root / s[2])]
    atomic_write_text(root / _LEDGER, json.dumps(ledger))


def _address_bytes(root: Path, ledger: dict[str, list], tag: str) -> int:
    """What the files stored from the address tagged `tag` take now (each file once; removed files count 0)."""
    return sum(_size(root / rel) for rel in {s[2] for s in ledger["stored"] if s[1] == tag})


def _admit(root: Path, owner_key: str, address: str, settings: Settings, now: float) -> None:
    """Count one upload attempt against the hour's limits per person, per address and per subnet (the last two
    when the address is known), or refuse it with UploadError naming the limit and when it frees; the caller
    holds the lock."""
    ledger = _read_ledger(root)
    recent = [a for a in ledger["attempts"] if 0 <= now - a[0] < _HOUR]
    net = subnet(address) if address else ""
    who = [(1, _tag(owner_key), settings.uploads_per_hour_per_user, "you have", "per person",
            "GAN_UPLOADS_PER_HOUR_PER_USER")]
    if address:
        who += [(2, _tag(address), settings.uploads_per_hour_per_address, "your network address has",
                 "per address", "GAN_UPLOADS_PER_HOUR_PER_ADDRESS"),
                (3, _tag(net), settings.uploads_per_hour_per_subnet, f"your network ({net}) has", "per network",
                 "GAN_UPLOADS_PER_HOUR_PER_SUBNET")]
    for column, tag, limit, subject, per, variable in who:
        mine = sorted(a[0] for a in recent if a[column] == tag)
        if len(mine) >= limit:
            wait = max(1, math.ceil((mine[-limit] + _HOUR - now) / 60))
            raise UploadError(f"upload limit: {subject} sent {len(mine)} uploads in the last hour, the most this "
                              f"server accepts {per} ({variable}={limit}); try again in {wait} minute(s)")
    recent.append([now, _tag(owner_key), _tag(address) if address else "", _tag(net) if net else ""])
    ledger["attempts"] = recent
    _write_ledger(root, ledger, now)


def calibration_digits(home: Path, path: Path) -> int:
    """Training digits a rejection calibration of the generator at `path` uses: fewer for an upload, which anyone
    may send (rejection.UPLOAD_CALIBRATION_N), than for a run's or a shipped generator (CALIBRATION_N)."""
    from ..rejection import CALIBRATION_N, UPLOAD_CALIBRATION_N

    root = uploads_dir(home).resolve()
    return UPLOAD_CALIBRATION_N if root in Path(path).resolve().parents else CALIBRATION_N


#: What a page keeps between reruns for an upload it has stored: (the upload's file id, owner key, stored path).
Kept = tuple[str, str, str]


def kept_or_stored(home: Path, owner_key: str, file_id: str, data: bytes, settings: Settings,
                   kept: Kept | None = None, address: str = "") -> tuple[Path, Kept]:
    """This upload's stored file and what to keep: `kept` if it is this person's same upload, else `store_upload`."""
    # A page reruns on every widget change (seed, grid size): the upload was checked and stored on the first one.
    if kept and tuple(kept[:2]) == (file_id, owner_key) and Path(kept[2]).is_file():
        return Path(kept[2]), kept
    path = store_upload(home, owner_key, data, settings, address=address)
    return path, (file_id, owner_key, str(path))


def prune_uploads(home: Path, settings: Settings, now: float | None = None) -> int:
    """Remove uploads (and leftover temporary files) older than `upload_keep_days`; returns how many went."""
    root = uploads_dir(home)
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - settings.upload_keep_days * 86400
    gone = 0
    with _locked(root):  # an upload being written must not lose its folder to a prune in another process
        for folder in [root, *(d for d in root.iterdir() if d.is_dir() and not d.is_symlink())]:
            for p in folder.iterdir():
                if p.name in (_LOCK, _LEDGER) or (p.is_dir() and not p.is_symlink()):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if p.lstat().st_mtime < cutoff:
                        p.unlink()
                        gone += 1
            if folder != root:
                with contextlib.suppress(OSError):  # not empty: kept
                    folder.rmdir()
    return gone


def _files(folder: Path) -> list[Path]:
    return list(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def _all_files(home: Path) -> list[Path]:
    """Every stored upload: per-person folders, and the flat files older versions wrote to `uploads/`."""
    root = uploads_dir(home)
    return _files(root) + [p for d in (root.iterdir() if root.is_dir() else ())
                           if d.is_dir() and not d.is_symlink() for p in _files(d)]


def _size(path: Path) -> int:
    """Bytes a regular file takes; 0 for anything missing or not a plain file (a link counts nothing, and is
    never reused as an upload)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    return st.st_size if path.is_file() and not path.is_symlink() else 0


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """An exclusive lock on the uploads folder for the quota check and the write (across processes, POSIX)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: a single-process server, where the quota check cannot race
        yield
        return
    with open(root / _LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def public_reason(error: BaseException, *paths: str | os.PathLike) -> str:
    """What a visitor may read of a checkpoint or upload error: its reason, with every server path in `paths`
    (the file, GAN_HOME) cut out, so no absolute path of the server reaches a page."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and reason:
        text = reason
    elif isinstance(error, OSError) and error.strerror:  # errno's message: str() would add the file's path
        text = error.strerror
    else:
        text = str(error)
    for p in sorted({str(p) for p in paths if str(p)}, key=len, reverse=True):  # longest first: the file, then home
        text = text.replace(f"{p}: ", "").replace(p, Path(p).name)
    return text
