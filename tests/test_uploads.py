"""Uploaded generators (gan_core.runs.uploads) on real files: checked in memory first, per-person folders and quotas,
re-uploads counted once, pruning in every mode, and errors that name no server path."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gan_core.checkpoint import CheckpointError, load_generator, save_generator
from gan_core.config import ConfigError, TrainConfig
from gan_core.models import build_generator
from gan_core.runs import policy, uploads
from gan_core.runs.policy import Settings

CFG = TrainConfig(g_widths=(32,), d_widths=(32,), latent_dim=8)  # a ~100 KB generator
MB = 1024 * 1024
T0 = 1_700_000_000.0
DAY = 86400


def generator_bytes(folder: Path, seed: int, nan: bool = False) -> bytes:
    """A real GAN Studio generator export; another seed gives other weights, so other bytes of the same size."""
    torch.manual_seed(seed)
    g = build_generator(CFG)
    if nan:
        with torch.no_grad():
            next(g.parameters()).fill_(float("nan"))
    path = folder / f"g{seed}{'-nan' if nan else ''}.safetensors"
    save_generator(path, CFG, g, 1, 10)
    return path.read_bytes()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("generators")
    out = [generator_bytes(folder, seed) for seed in range(3)]
    assert len({len(b) for b in out}) == 1  # the quota arithmetic below counts in whole files
    return out


def stored(home: Path) -> list[Path]:
    """Every file under uploads/, whatever its name (temporary files included)."""
    root = home / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in (".lock", ".ledger.json")) \
        if root.exists() else []


def test_an_upload_is_checked_then_stored_per_person_under_its_content_hash(tmp_path, files):
    home = tmp_path / "home"
    hostile_key = "../../etc/passwd\x00<b>"  # whatever the key is, it only ever feeds a hash
    path = uploads.store_upload(home, hostile_key, files[0], Settings(), now=T0)
    assert path.is_file() and path.read_bytes() == files[0]
    assert path.parent.parent == home / "uploads" and path.parent.name.startswith("u-")
    assert ".." not in path.relative_to(home).parts and "etc" not in str(path.relative_to(home))
    assert load_generator(path)[1] == CFG
    # The same bytes again (another rerun, another tab): the same file, touched, not a second copy.
    again = uploads.store_upload(home, hostile_key, files[0], Settings(), now=T0 + 60)
    assert again == path and stored(home) == [path] and path.stat().st_mtime == T0 + 60
    # Another person gets their own folder, even for the same bytes.
    theirs = uploads.store_upload(home, "bob", files[0], Settings(), now=T0)
    assert theirs.parent != path.parent and theirs.name == path.name


def test_a_page_rerun_reuses_the_kept_upload_and_stores_anew_only_when_it_changed(tmp_path, files):
    home = tmp_path / "home"
    path, kept = uploads.kept_or_stored(home, "ada", "file-1", files[0], Settings())
    assert kept == ("file-1", "ada", str(path)) and path.read_bytes() == files[0]
    # A rerun (new seed, grid size): the kept file, even with other bytes at hand, so nothing is checked or written.
    assert uploads.kept_or_stored(home, "ada", "file-1", files[1], Settings(), kept) == (path, kept)
    assert stored(home) == [path]
    # Another upload, another person, or a kept file that has since been pruned: stored from the bytes given.
    other, kept2 = uploads.kept_or_stored(home, "ada", "file-2", files[1], Settings(), kept)
    assert other != path and other.read_bytes() == files[1] and kept2 == ("file-2", "ada", str(other))
    theirs, _ = uploads.kept_or_stored(home, "bob", "file-1", files[0], Settings(), kept)
    assert theirs.parent != path.parent
    path.unlink()
    again, _ = uploads.kept_or_stored(home, "ada", "file-1", files[0], Settings(), kept)
    assert again == path and path.read_bytes() == files[0]
    with pytest.raises(CheckpointError):  # a new upload is checked like any other
        uploads.kept_or_stored(home, "ada", "file-3", b"not a safetensors file", Settings(), kept)


def _pickle() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    return buf.getvalue()


def _plain_safetensors(tmp_path: Path) -> bytes:
    save_file({"x": torch.zeros(3)}, str(tmp_path / "plain.safetensors"))
    return (tmp_path / "plain.safetensors").read_bytes()


@pytest.mark.parametrize("kind", ["pickle", "truncated", "random", "empty", "too large", "plain safetensors",
                                  "nan weights"])
def test_hostile_uploads_are_refused_and_write_nothing(tmp_path, files, kind):
    home = tmp_path / "home"
    settings = Settings()
    data = {"pickle": lambda: _pickle(), "truncated": lambda: files[0][:-100],
            "random": lambda: os.urandom(4096), "empty": lambda: b"",
            "too large": lambda: files[0] + b" " * int(settings.max_upload_mb * MB),
            "plain safetensors": lambda: _plain_safetensors(tmp_path),
            "nan weights": lambda: generator_bytes(tmp_path, 0, nan=True)}[kind]()
    with pytest.raises(CheckpointError):  # plain safetensors and NaN weights: refused from the header and weights
        uploads.store_upload(home, "ada", data, settings, now=T0)
    assert stored(home) == []


def test_signed_out_visitors_cannot_upload_even_a_valid_file(tmp_path, files):
    home = tmp_path / "home"
    with pytest.raises(uploads.UploadError, match="sign in to upload"):
        uploads.store_upload(home, "", files[0], Settings(), now=T0)
    assert not (home / "uploads").exists()


def test_per_person_and_total_quotas_refuse_with_the_quota_named_and_write_nothing(tmp_path, files):
    home, n = tmp_path / "home", len(files[0])
    # Room for two files per person and three in all.
    settings = Settings(upload_quota_mb_per_user=2.5 * n / MB, upload_quota_mb_total=3.5 * n / MB)
    uploads.store_upload(home, "ada", files[0], settings, now=T0)
    uploads.store_upload(home, "ada", files[1], settings, now=T0)
    with pytest.raises(uploads.UploadError, match=r"per person \(GAN_UPLOAD_QUOTA_MB_PER_USER\)"):
        uploads.store_upload(home, "ada", files[2], settings, now=T0)
    assert len(stored(home)) == 2
    uploads.store_upload(home, "ada", files[0], settings, now=T0)  # a re-upload is not counted again
    uploads.store_upload(home, "bob", files[0], settings, now=T0)
    with pytest.raises(uploads.UploadError, match=r"in total \(GAN_UPLOAD_QUOTA_MB_TOTAL\)"):
        uploads.store_upload(home, "bob", files[1], settings, now=T0)
    assert len(stored(home)) == 3


def test_old_uploads_are_pruned_and_free_their_quota(tmp_path, files):
    home, n = tmp_path / "home", len(files[0])
    settings = Settings(upload_quota_mb_per_user=1.5 * n / MB, upload_keep_days=2)
    first = uploads.store_upload(home, "ada", files[0], settings, now=T0)
    legacy = home / "uploads" / "0123456789abcdef.safetensors"  # where older versions kept every upload
    legacy.write_bytes(files[1])
    os.utime(legacy, (T0, T0))
    assert uploads.prune_uploads(home, settings, now=T0 + 1 * DAY) == 0
    with pytest.raises(uploads.UploadError, match="per person"):
        uploads.store_upload(home, "ada", files[1], settings, now=T0 + 1 * DAY)
    # Three days on, the upload has expired: the next upload prunes it first, so it fits the quota again.
    path = uploads.store_upload(home, "ada", files[1], settings, now=T0 + 3 * DAY)
    assert stored(home) == [path] and not first.exists() and not legacy.exists()
    assert uploads.prune_uploads(home, settings, now=T0 + 6 * DAY) == 1
    assert stored(home) == [] and sorted(p.name for p in (home / "uploads").iterdir()) == [".ledger.json", ".lock"]


@pytest.mark.parametrize("demo", [False, True])
def test_policy_prune_removes_old_uploads_in_every_mode(store, files, demo):
    settings = Settings(demo_mode=demo, upload_keep_days=2)
    path = uploads.store_upload(store.home, "ada", files[0], settings, now=T0)
    cal = store.home / "calibrations" / "0123-n1000-seed99-v1.safetensors"  # rejection's cache ages out with them
    cal.parent.mkdir()
    cal.write_bytes(b"x")
    os.utime(cal, (T0, T0))
    assert policy.prune(store, settings, now=T0 + 1 * DAY) == [] and path.exists() and cal.exists()
    assert policy.prune(store, settings, now=T0 + 3 * DAY) == [] and not path.exists() and not cal.exists()


def test_public_reason_names_no_server_path(tmp_path):
    home = tmp_path / "home"
    path = home / "run-000001" / "generator.safetensors"
    assert uploads.public_reason(CheckpointError(f"{path}: no such checkpoint file"), path, home) == \
        "no such checkpoint file"
    try:
        path.stat()
    except OSError as e:
        assert str(tmp_path) not in uploads.public_reason(e, path, home)
    reason = CheckpointError(f"{path}: bad")
    reason.reason = "its weights are not finite"  # checkpoint.py's newer errors carry the reason apart
    assert uploads.public_reason(reason, path) == "its weights are not finite"
    assert str(home) not in uploads.public_reason(ValueError(f"see {home}/x"), home)


# --- issue 27: rate limits per person, address and subnet, checked before parsing; a quota per address ----------

def counting_checks(monkeypatch) -> list[int]:
    """Count checkpoint.check_upload calls made through uploads (the seconds of CPU a rate limit must spare)."""
    calls: list[int] = []
    real = uploads.check_upload

    def check(data, max_mb):
        calls.append(len(data))
        return real(data, max_mb)
    monkeypatch.setattr(uploads, "check_upload", check)
    return calls


def test_uploads_are_rate_limited_per_person_before_the_file_is_parsed(tmp_path, files, monkeypatch):
    """Issue 27: every refused upload cost seconds of CPU, with no limit on how many a person sent."""
    home, calls = tmp_path / "home", counting_checks(monkeypatch)
    settings = Settings(uploads_per_hour_per_user=2)
    uploads.store_upload(home, "ada", files[0], settings, now=T0)
    with pytest.raises(CheckpointError):  # a refused file counts too: it cost the check
        uploads.store_upload(home, "ada", b"garbage" * 1000, settings, now=T0 + 1)
    assert len(calls) == 2
    with pytest.raises(uploads.UploadError, match=r"upload limit: you have sent 2 uploads in the last hour, the most "
                                                  r"this server accepts per person "
                                                  r"\(GAN_UPLOADS_PER_HOUR_PER_USER=2\); try again in 60 minute"):
        uploads.store_upload(home, "ada", files[1], settings, now=T0 + 2)
    assert len(calls) == 2 and len(stored(home)) == 1  # refused before it was parsed: no check, nothing written
    # The same bytes again (another tab, a page rerun) are the stored file: no check, not counted.
    assert uploads.store_upload(home, "ada", files[0], settings, now=T0 + 3).read_bytes() == files[0]
    assert len(calls) == 2
    uploads.store_upload(home, "bob", files[1], settings, now=T0 + 4)  # another person has their own count
    uploads.store_upload(home, "ada", files[1], settings, now=T0 + 3601)  # an hour on: allowed again
    assert len(stored(home)) == 3


def test_new_cookies_from_one_address_or_subnet_share_its_limits(tmp_path, files, monkeypatch):
    """Issue 27: the upload limits were per cookie, and a new cookie is free."""
    home, calls = tmp_path / "home", counting_checks(monkeypatch)
    settings = Settings(uploads_per_hour_per_user=10, uploads_per_hour_per_address=2, uploads_per_hour_per_subnet=3)
    for i in range(2):  # a fresh visitor token each time, one address
        uploads.store_upload(home, f"anon:{i}", files[i], settings, now=T0 + i, address="203.0.113.7")
    with pytest.raises(uploads.UploadError, match=r"your network address has sent 2 uploads .* per address "
                                                  r"\(GAN_UPLOADS_PER_HOUR_PER_ADDRESS=2\)"):
        uploads.store_upload(home, "anon:new", files[2], settings, now=T0 + 5, address="203.0.113.7")
    uploads.store_upload(home, "anon:new", files[2], settings, now=T0 + 6, address="203.0.113.8")  # same /24
    with pytest.raises(uploads.UploadError, match=r"your network \(203\.0\.113\.0/24\) has sent 3 uploads .* "
                                                  r"\(GAN_UPLOADS_PER_HOUR_PER_SUBNET=3\)"):
        uploads.store_upload(home, "anon:newer", files[0], settings, now=T0 + 7, address="203.0.113.9")
    assert len(calls) == 3
    uploads.store_upload(home, "anon:newer", files[0], settings, now=T0 + 8, address="198.51.100.1")  # elsewhere
    uploads.store_upload(home, "anon:v6", files[0], settings, now=T0 + 9, address="2001:db8::1")
    ledger = (home / "uploads" / ".ledger.json").read_text()
    assert "203.0.113" not in ledger and "anon:" not in ledger and "2001:db8" not in ledger  # tags, not addresses


def test_the_upload_quota_also_holds_per_address(tmp_path, files):
    """Issue 27: the disk quota was per cookie: every new cookie brought another 100 MB."""
    home, n = tmp_path / "home", len(files[0])
    settings = Settings(upload_quota_mb_per_address=2.5 * n / MB)  # two files an address
    for i in range(2):
        uploads.store_upload(home, f"anon:{i}", files[i], settings, now=T0, address="203.0.113.7")
    with pytest.raises(uploads.UploadError, match=r"uploads from your network address would take .* per address "
                                                  r"\(GAN_UPLOAD_QUOTA_MB_PER_ADDRESS\)"):
        uploads.store_upload(home, "anon:2", files[2], settings, now=T0, address="203.0.113.7")
    assert len(stored(home)) == 2
    uploads.store_upload(home, "anon:2", files[2], settings, now=T0, address="198.51.100.1")  # another address
    # Expired uploads no longer count against their address.
    uploads.store_upload(home, "anon:3", files[2], settings, now=T0 + 3 * DAY, address="203.0.113.7")
    assert [p.read_bytes() for p in stored(home)] == [files[2]]  # the others expired with their quota use


def test_the_upload_limits_are_read_from_the_environment(monkeypatch):
    for name, value in (("GAN_UPLOADS_PER_HOUR_PER_USER", "3"), ("GAN_UPLOADS_PER_HOUR_PER_ADDRESS", "4"),
                        ("GAN_UPLOADS_PER_HOUR_PER_SUBNET", "5"), ("GAN_UPLOAD_QUOTA_MB_PER_ADDRESS", "7.5")):
        monkeypatch.setenv(name, value)
    s = Settings.from_env()
    assert (s.uploads_per_hour_per_user, s.uploads_per_hour_per_address, s.uploads_per_hour_per_subnet,
            s.upload_quota_mb_per_address) == (3, 4, 5, 7.5)
    assert Settings() == Settings(uploads_per_hour_per_user=10, uploads_per_hour_per_address=20,
                                  uploads_per_hour_per_subnet=40, upload_quota_mb_per_address=200.0)
    monkeypatch.setenv("GAN_UPLOADS_PER_HOUR_PER_USER", "0")
    with pytest.raises(ConfigError, match="GAN_UPLOADS_PER_HOUR_PER_USER='0' must be a positive number"):
        Settings.from_env()
