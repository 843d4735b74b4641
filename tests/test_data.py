import gzip
import http.server
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from gan_core import data
from gan_core.data import DataNotFoundError, find_files, load_dataset, to_float

MNIST_RAW = Path(os.environ["GAN_DATA_DIR"].split(os.pathsep)[0]) / "MNIST" / "raw"
FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture
def refusing():
    """A loopback port that refuses connections (bound, never listening): a mirror that is down."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{s.getsockname()[1]}/mnist/"
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch, refusing):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GAN_DATA_DIR", raising=False)
    monkeypatch.delenv("GAN_DATA_DOWNLOAD", raising=False)
    monkeypatch.setenv("GAN_DATA_MIRROR", refusing)  # a download fallback reached by mistake stays on this machine
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion_mnist", [])  # only the folders a test names
    return tmp_path / "cache"


def _listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def test_gz_in_torchvision_layout_is_decompressed_into_the_cache_not_the_source(cache):
    before = _listing(MNIST_RAW)
    images, labels = find_files("mnist", "train", MNIST_RAW.parent.parent, download=False)
    assert images.parent == cache / "MNIST" / "raw" and images.stat().st_size == 47040016
    assert _listing(MNIST_RAW) == before  # source folder untouched
    x, y = load_dataset("mnist", data_dir=MNIST_RAW.parent.parent, download=False)
    assert x.shape == (60000, 28, 28) and x.dtype.is_floating_point is False and y[:4].tolist() == [5, 0, 4, 1]


def test_raw_files_in_a_flat_folder_are_read_in_place(cache, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for n in NAMES[2:]:
        with gzip.open(MNIST_RAW / (n + ".gz")) as src, open(flat / n, "wb") as out:
            shutil.copyfileobj(src, out)
    images, _ = find_files("mnist", "test", flat, download=False)
    assert images == flat / "t10k-images-idx3-ubyte"
    x, _ = load_dataset("mnist", "test", flat, download=False)
    assert x.shape == (10000, 28, 28)


def test_env_var_may_list_several_folders_and_fashion_is_not_taken_for_mnist(cache, monkeypatch):
    if not FASHION.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    # Fashion-MNIST's files have MNIST's names; md5s tell them apart whatever the order of folders.
    monkeypatch.setenv("GAN_DATA_DIR", os.pathsep.join([str(FASHION), str(MNIST_RAW.parent.parent)]))
    _, mnist_labels = load_dataset("mnist", download=False)
    _, fashion_labels = load_dataset("fashion_mnist", download=False)
    assert mnist_labels[:4].tolist() == [5, 0, 4, 1]
    assert fashion_labels[:4].tolist() == [9, 0, 0, 3]


def test_truncated_gz_is_skipped_and_missing_data_explains_where_it_looked(cache, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for n in NAMES[:2]:
        (bad / (n + ".gz")).write_bytes((MNIST_RAW / (n + ".gz")).read_bytes()[:5000])
    with pytest.raises(DataNotFoundError) as e:
        find_files("mnist", "train", bad, download=False)
    msg = str(e.value)
    assert str(bad) in msg and str(bad / "MNIST" / "raw") in msg and "GAN_DATA_DIR" in msg and "--data-dir" in msg
    assert e.value.reason == "the mnist training images are not on this server"  # for a web page: no folder
    assert not list((cache / "MNIST" / "raw").glob("*.tmp"))  # no half-written file left behind


def test_to_float_maps_uint8_to_minus_one_one(mnist_slice):
    x = to_float(mnist_slice[:2])
    assert x.shape == (2, 1, 28, 28) and x.min().item() == -1.0 and x.max().item() == 1.0


def test_mirrors_are_torchvisions_own_unless_gan_data_mirror_names_one(monkeypatch):
    import torchvision.datasets as tvd
    monkeypatch.delenv("GAN_DATA_MIRROR", raising=False)
    assert data.mirrors("mnist") == tvd.MNIST.mirrors and data.mirrors("fashion_mnist") == tvd.FashionMNIST.mirrors
    monkeypatch.setenv("GAN_DATA_MIRROR", "http://mirror.example/mnist")
    assert data.mirrors("mnist") == ["http://mirror.example/mnist/"]


def test_a_mirror_that_is_down_is_given_up_at_once_and_named(cache, refusing):
    t = time.monotonic()
    with pytest.raises(DataNotFoundError) as e:
        find_files("mnist", "train")  # no folder named (the fixture unsets GAN_DATA_DIR): the cache, then the mirror
    assert time.monotonic() - t < data.PROBE_TIMEOUT_S  # refused: no need to wait for the probe's timeout
    msg = str(e.value)
    assert f"{refusing} is unreachable" in msg and "GAN_DATA_MIRROR" in msg and "GAN_DATA_DOWNLOAD=0" in msg
    assert "--data-dir" in msg and "GAN_DATA_DIR" in msg and str(cache / "MNIST" / "raw") in msg


def test_gan_data_download_0_never_connects(cache, monkeypatch):
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(4)
    listening.settimeout(0.2)
    monkeypatch.setenv("GAN_DATA_MIRROR", f"http://127.0.0.1:{listening.getsockname()[1]}/")
    monkeypatch.setenv("GAN_DATA_DOWNLOAD", "0")
    try:
        with pytest.raises(DataNotFoundError, match=r"switched off \(GAN_DATA_DOWNLOAD=0\)"):
            find_files("mnist", "train")
        with pytest.raises(socket.timeout):
            listening.accept()  # nobody knocked
    finally:
        listening.close()


def test_the_probe_gives_up_on_a_lookup_that_hangs(monkeypatch):
    # A DNS lookup without network can block for minutes whatever the socket timeout; it cannot be staged for real
    # here, so name resolution is made to hang.
    release = threading.Event()

    def lookup_that_hangs(*args, **kwargs):
        release.wait(60)
        raise OSError("lookup abandoned")
    monkeypatch.setattr(socket, "create_connection", lookup_that_hangs)
    monkeypatch.setattr(data, "PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setenv("GAN_DATA_MIRROR", "http://mirror.invalid/mnist/")  # .invalid never resolves anyway
    monkeypatch.delenv("GAN_DATA_DOWNLOAD", raising=False)
    t = time.monotonic()
    why = data._torchvision_download("mnist")
    release.set()
    assert time.monotonic() - t < 2 and "did not answer within 0.5 s (no network?)" in why


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_gan_data_mirror_downloads_from_a_mirror_of_your_own(cache, monkeypatch):
    # A mirror on this machine serving the four .gz files, as an operator without internet access would run one.
    import torchvision.datasets as tvd

    def handler(*a, **k):
        return _Quiet(*a, directory=str(MNIST_RAW), **k)

    # The shared copies were recompressed (their README): torchvision checks the .gz md5, so it is told theirs. What
    # lands in the cache is still checked against the originals' decompressed md5 by find_files.
    monkeypatch.setattr(tvd.MNIST, "resources", [(n + ".gz", data._md5(MNIST_RAW / (n + ".gz"))) for n in NAMES])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GAN_DATA_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        x, y = load_dataset("mnist", "test")  # no folder named: the cache is empty, so the mirror
    finally:
        server.shutdown()
        server.server_close()
    assert x.shape == (10000, 28, 28) and y[:4].tolist() == [7, 2, 1, 0]
    assert sorted(p.name for p in (cache / "MNIST" / "raw").glob("*-ubyte")) == sorted(NAMES)  # into the cache


def test_a_folder_data_dir_names_must_exist_and_hold_the_data_nothing_else_is_searched(cache, tmp_path, monkeypatch):
    # `train --data-dir /nonexistent` trained on data found elsewhere (issue 26): the folder a person names is where
    # the data must be. Here the cache already holds MNIST, the place the search used to fall back to.
    find_files("mnist", "train", MNIST_RAW.parent.parent, download=False)  # decompressed into the cache
    assert find_files("mnist", "train", download=False)[0].parent == cache / "MNIST" / "raw"
    missing = tmp_path / "nonexistent"
    with pytest.raises(DataNotFoundError, match=f"{missing} does not exist or is not a folder .named by --data-dir"):
        find_files("mnist", "train", missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError) as e:
        find_files("mnist", "train", empty)  # download allowed, yet none is tried: the mirror is not named
    msg = str(e.value)
    assert msg.startswith("mnist train data is not in the folder(s) --data-dir names") and str(empty) in msg
    assert str(cache) not in msg.split("Fix:")[0] and "unreachable" not in msg  # only the named folder was searched
    both = os.pathsep.join([str(empty), str(MNIST_RAW.parent.parent)])  # several folders: one holding it is enough
    assert find_files("mnist", "train", both, download=False)[0].name == "train-images-idx3-ubyte"
    with pytest.raises(DataNotFoundError, match=f"{missing} does not exist"):  # ...but each must exist
        find_files("mnist", "train", os.pathsep.join([str(MNIST_RAW.parent.parent), str(missing)]))


def test_gan_data_dir_folders_must_exist_but_may_each_hold_one_dataset(cache, tmp_path, monkeypatch):
    # make sets GAN_DATA_DIR to MNIST's folder and Debian's Fashion-MNIST folder together: each holds one dataset,
    # so a folder without this dataset is passed over; a folder that does not exist is a typo and refused.
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("GAN_DATA_DIR", os.pathsep.join([str(empty), str(MNIST_RAW.parent.parent)]))
    assert load_dataset("mnist", limit=4, download=False)[1].tolist() == [5, 0, 4, 1]
    monkeypatch.setenv("GAN_DATA_DIR", os.pathsep.join([str(MNIST_RAW.parent.parent), str(tmp_path / "typo")]))
    with pytest.raises(DataNotFoundError, match=f"{tmp_path / 'typo'} does not exist or is not a folder .named by "
                                                f"GAN_DATA_DIR"):
        load_dataset("mnist", limit=4, download=False)
