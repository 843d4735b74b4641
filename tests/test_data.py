import gzip
import os
import shutil
from pathlib import Path

import pytest

from gan_core import data
from gan_core.data import DataNotFoundError, find_files, load_dataset, to_float

MNIST_RAW = Path(os.environ["GAN_DATA_DIR"].split(os.pathsep)[0]) / "MNIST" / "raw"
FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GAN_DATA_DIR", raising=False)
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
    assert not list((cache / "MNIST" / "raw").glob("*.tmp"))  # no half-written file left behind


def test_to_float_maps_uint8_to_minus_one_one(mnist_slice):
    x = to_float(mnist_slice[:2])
    assert x.shape == (2, 1, 28, 28) and x.min().item() == -1.0 and x.max().item() == 1.0
