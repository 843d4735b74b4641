"""Find, verify, decompress and load MNIST / Fashion-MNIST as one uint8 tensor.

Where it looks: the folders `--data-dir` names (several joined by os.pathsep), each as
`DIR/<MNIST|FashionMNIST>/raw` and `DIR` itself, raw idx files or `.gz`, and nowhere else: a folder a person names
must exist and hold the dataset. Without it: `GAN_DATA_DIR`'s folders (each must exist; one may hold MNIST and
another Fashion-MNIST), then Debian's dataset-fashion-mnist folder, then the product's own cache, where a last
resort torchvision download also lands. Files are identified by the md5 of their decompressed bytes, so MNIST and
Fashion-MNIST (which share file names) are never mixed up and a truncated file is never trained on. Source folders
are only read: `.gz` files are decompressed into the cache.

The download gives up within seconds on a machine without network: the mirror's host must accept a connection
within PROBE_TIMEOUT_S, and no socket operation of the download may wait longer than DOWNLOAD_TIMEOUT_S.
`GAN_DATA_MIRROR=URL` downloads from a mirror of your own instead of torchvision's; `GAN_DATA_DOWNLOAD=0` never
downloads.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import torch

# What each class index means, for pickers and captions.
CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
}

# md5 of the decompressed originals (shared/datasets/README.md; Fashion-MNIST from Debian's package).
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
SYSTEM_DIRS = {"fashion_mnist": [Path("/usr/share/datasets/fashion-mnist")], "mnist": []}
PROBE_TIMEOUT_S = 3.0     # the mirror's host must accept a TCP connection (DNS lookup included) this fast
DOWNLOAD_TIMEOUT_S = 6.0  # longest wait for any one socket operation of the download: a silent server is left then


class DataNotFoundError(FileNotFoundError):
    """The dataset is in none of the places searched; the message lists them and says how to fix it (for whoever
    runs the server: the command line, the server log). `reason` says the same in words that name no server path,
    for a web page's visitors."""

    def __init__(self, message: str, reason: str = "the data is not on this server") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple:  # pickled across processes (Ray) with both parts
        return type(self), (self.args[0], self.reason)


def cache_dir() -> Path:
    """The product's own data cache: `GAN_CACHE_DIR`, else ~/.cache/gan_studio."""
    return Path(os.environ.get("GAN_CACHE_DIR") or Path.home() / ".cache" / "gan_studio")


def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The user's data folders: the argument, else `GAN_DATA_DIR`, split on os.pathsep."""
    raw = str(data_dir) if data_dir else os.environ.get("GAN_DATA_DIR", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def _candidates(dataset: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """Where to look, in order; a DataNotFoundError naming a folder that `data_dir` or GAN_DATA_DIR names but that
    does not exist (a typo must not train on data found elsewhere)."""
    named = data_dirs(data_dir)
    by = "--data-dir" if data_dir else "GAN_DATA_DIR"
    for d in named:
        if not d.is_dir():
            raise DataNotFoundError(f"{d} does not exist or is not a folder (named by {by}); name the folder that "
                                    f"holds the {dataset} idx files",
                                    f"the folder this server reads {dataset} from does not exist")
    folders = []
    for d in named:
        folders += [d / TORCHVISION_FOLDER[dataset] / "raw", d]
    if data_dir:  # the person named where the data is: only there, never the data of another place
        return folders
    folders += SYSTEM_DIRS[dataset]
    folders.append(cache_dir() / TORCHVISION_FOLDER[dataset] / "raw")
    return folders


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _materialise(folder: Path, name: str, dataset: str) -> Path | None:
    """A verified, decompressed copy of `folder/name[.gz]`, or None if absent or not this dataset's file."""
    want = MD5[dataset][name]
    cached = cache_dir() / TORCHVISION_FOLDER[dataset] / "raw" / name
    raw, gz = folder / name, folder / (name + ".gz")
    if raw.is_file() and _md5(raw) == want:
        return raw
    if not gz.is_file():
        return None
    if cached.is_file() and _md5(cached) == want:
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Decompress to a temp file beside the target, check, then rename: a crash never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(gz, "rb") as src:
            shutil.copyfileobj(src, out)
        if _md5(Path(tmp)) != want:
            return None
        os.replace(tmp, cached)
        return cached
    except (OSError, EOFError):  # truncated or corrupt .gz: treat as not found here
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def find_files(dataset: str, split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True) -> tuple[Path, Path]:
    """Paths of the (images, labels) idx files for `split`, decompressed and verified."""
    prefix = "train" if split == "train" else "t10k"
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    searched = _candidates(dataset, data_dir)
    for folder in searched:
        found = [_materialise(folder, n, dataset) for n in names]
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    where = "\n  ".join(str(p) for p in searched)
    if data_dir:
        raise DataNotFoundError(
            f"{dataset} {split} data is not in the folder(s) --data-dir names. Looked for {names[0]}[.gz] and "
            f"{names[1]}[.gz] (checked by md5) in:\n  {where}\nWith --data-dir nothing else is searched and nothing "
            f"is downloaded. Fix: put the four idx files (raw or .gz) there or name the folder that holds them; or "
            f"drop --data-dir to search GAN_DATA_DIR, {cache_dir()} and the download.", _missing(dataset, split))
    why = _torchvision_download(dataset) if download else "no download was tried (download=False)"
    if why is None:
        return find_files(dataset, split, data_dir, download=False)
    raise DataNotFoundError(
        f"{dataset} {split} data not found. Looked for {names[0]}[.gz] and {names[1]}[.gz] (checked by md5) in:\n"
        f"  {where}\n"
        f"and the torchvision download into {cache_dir()} did not work: {why}. Fix: put the four idx files (raw or "
        f".gz) in a folder and pass --data-dir FOLDER or set GAN_DATA_DIR=FOLDER"
        + (" (or apt-get install dataset-fashion-mnist)" if dataset == "fashion_mnist" else "")
        + "; or set GAN_DATA_MIRROR=URL to download from a mirror of your own (GAN_DATA_DOWNLOAD=0 never downloads).",
        _missing(dataset, split))


def _missing(dataset: str, split: str) -> str:
    """DataNotFoundError's reason: the missing data in words, with no folder named."""
    return f"the {dataset} {'training' if split == 'train' else 'test'} images are not on this server"


def _torchvision_class(dataset: str) -> type[Any]:
    import torchvision.datasets as tvd

    return tvd.MNIST if dataset == "mnist" else tvd.FashionMNIST


def mirrors(dataset: str) -> list[str]:
    """Base URLs the download tries: `GAN_DATA_MIRROR` if set, else torchvision's own mirrors for `dataset`."""
    own = os.environ.get("GAN_DATA_MIRROR", "").strip()
    return [own.rstrip("/") + "/"] if own else list(_torchvision_class(dataset).mirrors)


def _shown(url: str) -> str:
    """A URL for a message, without any user:password part."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6] bracket
        return "the mirror in GAN_DATA_MIRROR (not a URL)"
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _probe(url: str, timeout: float) -> str | None:
    """None if `url`'s host accepts a TCP connection within `timeout` seconds, else why not.

    The connection is made in a daemon thread joined with a timeout, because a DNS lookup is not bound by any socket
    timeout and can block for minutes where there is no network; a thread still stuck in it is simply left behind.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number, an unclosed [IPv6] bracket
        return f"{_shown(url)} is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{_shown(url)} is not an http(s) URL"
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except (OSError, UnicodeError) as e:  # refused, unreachable, unknown host, a name IDNA cannot encode
            outcome.append(f"{_shown(url)} is unreachable ({' '.join(str(e).split()) or type(e).__name__})")

    t = threading.Thread(target=connect, name="gan-data-probe", daemon=True)
    t.start()
    t.join(timeout)
    return outcome[0] if outcome else f"{_shown(url)} did not answer within {timeout:g} s (no network?)"


def _torchvision_download(dataset: str) -> str | None:
    """torchvision's normal download into the cache; None when it worked, else why it did not."""
    if os.environ.get("GAN_DATA_DOWNLOAD", "").strip().lower() in ("0", "false", "no", "off"):
        return "it is switched off (GAN_DATA_DOWNLOAD=0)"
    urls = mirrors(dataset)
    why = _probe(urls[0], PROBE_TIMEOUT_S)  # the first mirror's host: torchvision tries that one first
    if why is not None:
        return why
    cls = _torchvision_class(dataset)
    # The same class name (torchvision names the cache folder after it), trying only these mirrors.
    mirrored = type(cls.__name__, (cls,), {"mirrors": urls})
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # urllib's reads in torchvision take no timeout of their own
    try:
        for train in (True, False):
            mirrored(str(cache_dir()), train=train, download=True)
        return None
    except Exception as e:  # no network, mirror down, a silent server: the caller explains where it looked
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        return f"downloading from {_shown(urls[0])} failed ({reason})"
    finally:
        socket.setdefaulttimeout(before)


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (big-endian header, uint8 payload) without copying the payload twice."""
    data = path.read_bytes()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_dataset(dataset: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 limit: int = 0, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) on the CPU; `limit` > 0 keeps the first `limit`."""
    img_path, lbl_path = find_files(dataset, split, data_dir, download)
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) → float (N, 1, 28, 28) in [-1, 1], as every seed normalises."""
    return images.unsqueeze(1).float().div_(127.5).sub_(1.0)
