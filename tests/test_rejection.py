"""gan_core.rejection: oversample G, score with D, keep n — exact raw at strength 0, quotas per stratum, DRS."""
import pytest
import torch
from torch import nn

from gan_core import rejection
from gan_core.config import ConfigError, TrainConfig
from gan_core.data import to_float
from gan_core.models import build_discriminator, build_generator, info_code
from gan_core.sampling import generate_float

SMALL = {"g_widths": (32, 64), "d_widths": (64, 32), "device": "cpu"}


def models(preset: str = "seed000-dense", **over):
    cfg = TrainConfig.from_preset(preset, **{**SMALL, **over})
    torch.manual_seed(0)
    return build_generator(cfg).eval(), build_discriminator(cfg).eval(), cfg


class Brightness(nn.Module):
    """A stand-in D whose logit is −k·mean pixel: MNIST (mostly black, mean ≈ −0.74) looks real, grey looks fake."""

    def __init__(self, k: float = 4.0) -> None:
        super().__init__()
        self.k = k
        self.net = nn.Sequential(nn.AvgPool2d(4), nn.Flatten())   # (N, 49) features: 4×4 block means
        self.anchor = nn.Parameter(torch.zeros(1))  # d_outputs reads the device from a parameter

    def head(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:  # (N, 49) → (N,)
        return -self.k * h.mean(1)


def test_keep_fraction_spans_raw_to_strict_and_refuses_nonsense():
    assert rejection.keep_fraction(0) == 1.0
    assert rejection.keep_fraction(1) == pytest.approx(1 / rejection.MAX_OVERSAMPLE)
    assert rejection.keep_fraction(0.2) > rejection.keep_fraction(0.8)
    for bad in (-0.1, 1.5, True, "1", float("nan")):
        with pytest.raises(ConfigError, match="reject"):
            rejection.keep_fraction(bad)


def test_strength_zero_is_exactly_the_raw_draw():
    g, d, cfg = models()
    r = rejection.sample(g, d, cfg, 12, seed=5, strength=0, method="topk")
    assert r.candidates == 12 and r.labels is None
    assert torch.equal(r.images.squeeze(1), torch.from_numpy(generate_float(g, cfg, 12, 5)))


def test_topk_keeps_the_candidates_d_scores_highest():
    g, d, cfg = models()
    r = rejection.sample(g, d, cfg, 20, seed=3, strength=1, method="topk")
    assert r.candidates == 80 and r.images.shape == (20, 1, 28, 28)
    _, all_images, _ = rejection._draw(g, cfg, 80, 3, None)
    all_logits, _ = rejection.d_outputs(d, all_images)
    kept_logits, _ = rejection.d_outputs(d, r.images)
    assert kept_logits.min() >= torch.topk(all_logits, 20).values.min() - 1e-6
    assert kept_logits.mean() > all_logits.mean()


def test_select_fills_each_stratum_by_its_share_and_keeps_draw_order():
    key = torch.arange(12, dtype=torch.float64)          # later candidates score higher
    strata = torch.tensor([0] * 6 + [1] * 3 + [2] * 3)
    keep = rejection.select(key, 4, strata)
    assert keep.tolist() == [4, 5, 8, 11]                 # 2 of stratum 0, 1 each of 1 and 2, best within each
    assert rejection.select(key, 4).tolist() == [8, 9, 10, 11]


def test_conditional_strata_keep_every_class_equally_and_labels_follow_the_images():
    g, d, cfg = models("dense-conditional")
    r = rejection.sample(g, d, cfg, 30, seed=1, strength=1, method="strata")
    assert torch.bincount(r.labels, minlength=10).tolist() == [3] * 10
    one = rejection.sample(g, d, cfg, 6, seed=1, strength=0.5, method="strata", label=7)
    assert one.labels.tolist() == [7] * 6 and one.candidates == 15   # keep 1 / (1 + 3·0.5)


def test_info_code_strata_keep_the_code_mix_of_the_candidates():
    g, d, cfg = models("dense-ema", info_code=True)
    r = rejection.sample(g, d, cfg, 40, seed=2, strength=1, method="strata")
    z, cand, _ = rejection._draw(g, cfg, 160, 2, None)
    want = rejection._quotas(info_code(z), 40)
    # The kept digits are rows of the candidates; recover their codes by matching images.
    rows = [int((cand - img).abs().flatten(1).sum(1).argmin()) for img in r.images]
    got = torch.bincount(info_code(z[rows]), minlength=10)
    assert {k: int(got[k]) for k in want} == want


def test_calibration_recovers_a_separating_d_and_drs_prefers_what_it_believes(mnist_slice):
    g, _, cfg = models()
    d = Brightness()
    cal = rejection.calibrate(g, d, cfg, to_float(mnist_slice[:200]), clusters=4)
    assert cal.scale > 0 and cal.real_accuracy > 0.9 and cal.fake_accuracy > 0.9
    assert cal.centres.shape == (4, 49)
    raw = rejection.sample(g, d, cfg, 30, seed=4, strength=0)
    for method in ("drs", "strata-drs", "strata"):
        r = rejection.sample(g, d, cfg, 30, seed=4, strength=1, method=method, cal=cal)
        assert r.images.shape == (30, 1, 28, 28) and r.candidates == 120
        assert r.images.mean() < raw.images.mean()       # darker = more MNIST-like to this D
    a = rejection.sample(g, d, cfg, 30, seed=4, strength=1, method="drs", cal=cal)
    b = rejection.sample(g, d, cfg, 30, seed=4, strength=1, method="drs", cal=cal)
    assert torch.equal(a.images, b.images)


def test_head_refit_learns_what_the_logit_misses(mnist_slice):
    # D's logit here is blind (k = 0), so Platt scaling alone cannot separate; a refitted head on D's features can.
    g, _, cfg = models()
    d = Brightness(k=0.0)
    real = to_float(mnist_slice[:200])
    plain = rejection.calibrate(g, d, cfg, real, clusters=2)
    refit = rejection.calibrate(g, d, cfg, real, clusters=2, head=True)
    assert plain.w is None and refit.w.shape == (rejection.HEAD_DIMS,) and refit.sd.shape == (49, rejection.HEAD_DIMS)
    assert min(plain.real_accuracy, plain.fake_accuracy) <= 0.5
    assert refit.real_accuracy > 0.9 and refit.fake_accuracy > 0.9
    logits, feats = rejection.d_outputs(d, real[:50])
    assert (refit.log_ratio(logits, feats) > 0).float().mean() > 0.9


def test_refusals_name_the_problem():
    g, d, cfg = models()
    with pytest.raises(ConfigError, match="unknown method"):
        rejection.sample(g, d, cfg, 4, 0, 1, method="best")
    with pytest.raises(ConfigError, match="calibrated"):
        rejection.sample(g, d, cfg, 4, 0, 1, method="drs")
    with pytest.raises(ConfigError, match="calibration"):
        rejection.sample(g, d, cfg, 4, 0, 1, method="strata")
    with pytest.raises(ConfigError, match="positive"):
        rejection.sample(g, d, cfg, 0, 0, 1)
    gc, dc, cfgc = models("dense-conditional")
    with pytest.raises(ConfigError, match="labels"):
        rejection.calibrate(gc, dc, cfgc, torch.zeros(20, 1, 28, 28))



def _accuracy(d, g, cfg, held):
    """D's accuracy on held-out reals (N, 1, 28, 28) and on as many fresh fakes: (real, fake)."""
    _, fakes, _ = rejection._draw(g, cfg, len(held), 11, None)
    real_logits, _ = rejection.d_outputs(d, held)
    fake_logits, _ = rejection.d_outputs(d, fakes)
    return float((real_logits > 0).float().mean()), float((fake_logits <= 0).float().mean())


def test_fit_discriminator_learns_real_from_fake_on_held_out_images_and_leaves_g_alone(mnist_slice):
    # An untrained G draws grey blobs; a D fitted against it on 384 real images must tell the other 128 real
    # images (never trained on) from fresh fakes, which the same D as built (seed 3) cannot, without moving one bit
    # of G or of the caller's RNG.
    g, _, cfg = models(batch_size=64)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    rng_before = torch.get_rng_state()
    held = to_float(mnist_slice[384:])                                          # (128, 1, 28, 28)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        fresh = build_discriminator(cfg).eval()
    assert min(_accuracy(fresh, g, cfg, held)) < 0.5                           # as built: calls every image fake
    d = rejection.fit_discriminator(g, cfg, mnist_slice[:384], None, steps=20, seed=3, holdout=0)
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before) and not d.training and not g.training
    assert min(_accuracy(d, g, cfg, held)) > 0.9
    again = rejection.fit_discriminator(g, cfg, mnist_slice[:384], None, steps=20, seed=3, holdout=0)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in d.state_dict().items())   # seeded


def test_fit_discriminator_trains_a_conditional_d_on_labelled_pairs_and_reports_held_out_accuracy(
        mnist_slice, mnist_labels):
    g, _, cfg = models("dense-conditional", batch_size=64)
    with pytest.raises(ConfigError, match="labels"):
        rejection.fit_discriminator(g, cfg, mnist_slice, None, steps=1)
    report = rejection.FitReport()
    d = rejection.fit_discriminator(g, cfg, mnist_slice, mnist_labels, steps=20, seed=1, holdout=128, every=10,
                                    report=report)
    # measured on the last 128 images (held out of training) and 128 fresh fakes, at steps 10 and 20
    assert [row[0] for row in report.history] == [10, 20] and min(report.last[1:]) > 0.9
    assert d.head.embed is not None


# --- issue 27: a calibration is paid once per file content, and an upload's on fewer digits ----------------------

def test_a_calibration_is_kept_by_the_files_content_and_read_back_not_recomputed(tmp_path, counted_calibrations):
    """Issue 27: every new upload of a 20 MB export carrying D cost 68 s of CPU calibrating, the same file again too."""
    import shutil

    from gan_core.checkpoint import save_generator

    g, d, cfg = models()
    path = tmp_path / "a" / "generator.safetensors"
    path.parent.mkdir()
    save_generator(path, cfg, g, 1, 10, d=d)
    calls = counted_calibrations
    folder = tmp_path / "calibrations"
    first = rejection.cached_calibration(path, g, d, cfg, folder, n=300)
    assert calls == [300] and len(list(folder.iterdir())) == 1
    copy = tmp_path / "b" / "other-name.safetensors"  # the same bytes uploaded again, by someone else
    copy.parent.mkdir()
    shutil.copy(path, copy)
    again = rejection.cached_calibration(copy, g, d, cfg, folder, n=300)
    assert calls == [300]  # read back, not recomputed
    for k in ("scale", "bias", "max_f", "real_accuracy", "fake_accuracy"):
        assert getattr(again, k) == getattr(first, k)
    for k in ("centres", "w", "mu", "sd"):
        assert torch.equal(getattr(again, k), getattr(first, k))
    assert rejection.cached_calibration(copy, g, d, cfg, folder, n=200) is not None and calls == [300, 200]
    next(folder.glob("*-n300-*")).write_bytes(b"garbage")  # a damaged cache entry is recomputed, not trusted
    rejection.cached_calibration(path, g, d, cfg, folder, n=300)
    assert calls == [300, 200, 300]
    assert rejection.prune_calibrations(folder, 3600, now=__import__("time").time() + 7200) == 2
    assert list(folder.iterdir()) == []


def test_an_upload_calibrates_on_fewer_digits_than_a_run(tmp_path):
    from gan_core.runs import uploads

    home = tmp_path / "home"
    up = uploads.person_dir(home, "ada") / "0123.safetensors"
    run = home / "run-000001" / "generator.safetensors"
    assert uploads.calibration_digits(home, up) == rejection.UPLOAD_CALIBRATION_N < rejection.CALIBRATION_N
    assert uploads.calibration_digits(home, run) == rejection.CALIBRATION_N


# --- issue 29: a packed D still rejects, judging each image as a pack of copies of itself -----------------------------
def test_a_packed_d_scores_one_image_as_a_pack_of_its_copies_and_rejection_works(mnist_slice, mnist_labels):
    g, d, cfg = models("dense-conditional", pack=2, batch_size=64)
    images, y = torch.rand(6, 1, 28, 28) * 2 - 1, torch.arange(6)
    logits, feats = rejection.d_outputs(d, images, y)
    assert logits.shape == (6,) and feats.shape == (6, 32)  # d_widths (64, 32): features of the last
    with torch.no_grad():  # the same as D's own forward on each image twice over, with its label twice
        torch.testing.assert_close(logits, d(images.repeat_interleave(2, 0), y.repeat_interleave(2)))
    d = rejection.fit_discriminator(g, cfg, mnist_slice, mnist_labels, steps=10, seed=1, holdout=128)
    cal = rejection.calibrate(g, d, cfg, to_float(mnist_slice[:200]), real_labels=mnist_labels[:200])
    r = rejection.sample(g, d, cfg, 20, seed=3, strength=1, method="strata-drs", cal=cal)
    assert r.images.shape == (20, 1, 28, 28) and r.candidates == 80
    assert r.labels.bincount(minlength=10).tolist() == [2] * 10  # the strata (classes) keep their shares
