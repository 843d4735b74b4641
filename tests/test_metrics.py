import math

import numpy as np
import pytest
import torch

from gan_core import metrics
from gan_core.data import load_dataset, to_float
from gan_core.metrics import (Quality, detect_d_overpowering, detect_divergence, detect_mode_collapse,
                              frechet_distance, inception_score)

def test_frechet_distance_of_gaussians_with_known_answer():
    mu, cov = np.zeros(4), np.eye(4)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(mu, cov, mu + 2.0, cov) == pytest.approx(16.0)  # ‖μ1 - μ2‖² = 4 · 2²
    # Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½) for Σ1 = I, Σ2 = 4I is 4 (1 + 4 - 2·2) = 4
    assert frechet_distance(mu, cov, mu, 4 * cov) == pytest.approx(4.0)


def test_inception_score_extremes():
    assert inception_score(np.eye(10)) == pytest.approx(10.0)        # confident and evenly spread
    assert inception_score(np.tile(np.eye(10)[3], (50, 1))) == pytest.approx(1.0)  # all one class
    assert inception_score(np.full((20, 10), 0.1)) == pytest.approx(1.0)            # pure doubt


def _q(shares, diversity=10.0) -> Quality:
    return Quality(1000, 5.0, 9.0, 0.9, tuple(shares), diversity)


FLOOR = _q([0.1] * 10)


def test_mode_collapse_triggers_on_skewed_classes_missing_classes_or_low_diversity():
    assert detect_mode_collapse(_q([0.5] + [0.5 / 9] * 9), FLOOR).kind == "mode_collapse"
    assert "almost never appear" in detect_mode_collapse(_q([0.125] * 8 + [0.0, 0.0]), FLOOR).message
    assert "diversity" in detect_mode_collapse(_q([0.1] * 10, diversity=4.0), FLOOR).message


def test_mode_collapse_stays_quiet_for_a_healthy_generator():
    assert detect_mode_collapse(_q([0.08, 0.12, 0.09, 0.11, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 9.0), FLOOR) is None


def _rows(d_real, d_fake, n=30, d_loss=1.0, g_loss=1.0):
    return [dict(step=i, d_real=d_real, d_fake=d_fake, d_loss=d_loss, g_loss=g_loss) for i in range(n)]


def test_d_overpowering():
    assert detect_d_overpowering(_rows(0.99, 0.01)).kind == "d_overpowering"
    assert detect_d_overpowering(_rows(0.7, 0.3)) is None
    assert detect_d_overpowering(_rows(0.99, 0.01, n=5)) is None  # too short to judge
    assert detect_d_overpowering(_rows(0.7, 0.3) + _rows(0.99, 0.01, n=5)) is None  # a blip, not a stretch


def test_divergence():
    exploding = _rows(0.5, 0.5, 20) + _rows(0.5, 0.5, 10, d_loss=80.0, g_loss=90.0)
    assert detect_divergence(exploding).kind == "divergence"
    assert detect_divergence(_rows(0.5, 0.5, 40)) is None
    assert "diverged at step 7" in detect_divergence([], "diverged at step 7: d_loss=nan").message
    assert detect_divergence([], "OSError: disk full") is None


def test_critic_losses_are_not_read_as_probabilities():
    # A healthy WGAN/hinge critic's raw scores are far from 0, so sigmoid(score) sits near 1 and 0: no warning there,
    # while the same numbers from a BCE discriminator mean D has won.
    assert detect_d_overpowering(_rows(0.99, 0.01), loss="wgan_gp") is None
    assert detect_d_overpowering(_rows(0.99, 0.01), loss="hinge") is None
    assert detect_d_overpowering(_rows(0.99, 0.01), loss="minimax").kind == "d_overpowering"
    # WGAN's G loss -E[D(G(z))] drifts with the critic's offset; only an exploding critic loss is divergence.
    drifting_g = _rows(0.5, 0.5, 20, d_loss=-1.0, g_loss=2.0) + _rows(0.5, 0.5, 10, d_loss=-1.5, g_loss=60.0)
    assert detect_divergence(drifting_g, loss="wgan_gp") is None
    assert detect_divergence(drifting_g, loss="non_saturating").kind == "divergence"
    exploding_d = _rows(0.5, 0.5, 20, d_loss=-1.0) + _rows(0.5, 0.5, 10, d_loss=-50.0)
    assert detect_divergence(exploding_d, loss="wgan_gp").kind == "divergence"


@pytest.mark.slow
def test_shipped_classifier_is_small_and_accurate():
    assert metrics.classifier_path("mnist").stat().st_size < 2_000_000
    x, y = load_dataset("mnist", "test")
    assert metrics.accuracy(metrics.load_classifier("mnist"), x, y) >= 0.99


@pytest.mark.slow
def test_shipped_fashion_classifier_is_small_and_accurate():
    assert metrics.classifier_path("fashion_mnist").stat().st_size < 2_000_000
    try:
        x, y = load_dataset("fashion_mnist", "test", download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not on this machine (apt-get install dataset-fashion-mnist)")
    assert metrics.accuracy(metrics.load_classifier("fashion_mnist"), x, y) >= 0.90


@pytest.mark.slow
def test_real_data_scores_far_better_than_noise_and_than_one_repeated_digit():
    floor = metrics.real_floor("mnist", 1000)
    assert floor.inception_score > 9.0 and all(0.05 < s < 0.15 for s in floor.class_shares)
    noise = metrics.measure(torch.rand(1000, 1, 28, 28) * 2 - 1, "mnist")
    assert noise.fd > 10 * floor.fd
    x, _ = load_dataset("mnist", "test", limit=1)
    same = metrics.measure(to_float(x).repeat(1000, 1, 1, 1), "mnist")  # one digit, a thousand times
    assert same.inception_score == pytest.approx(1.0, abs=0.05) and max(same.class_shares) == 1.0
    assert detect_mode_collapse(same, floor) is not None and detect_mode_collapse(floor, floor) is None


def test_trainer_emits_quality_each_epoch(tiny_cfg, mnist_slice):
    from gan_core.events import EpochQuality, ListSink
    from gan_core.trainer import train
    sink = ListSink()
    train(tiny_cfg.replace(eval_samples=300), sink, images=mnist_slice)
    q = sink.of(EpochQuality)
    assert [e.epoch for e in q] == [1, 2] and q[0].quality["n"] == 300
    assert math.isclose(sum(q[0].quality["class_shares"]), 1.0, rel_tol=1e-6)
    sink = ListSink()
    train(tiny_cfg.replace(eval_samples=0), sink, images=mnist_slice)
    assert sink.of(EpochQuality) == []
    sink = ListSink()  # sample grids every 2nd epoch only: quality is still scored after every epoch
    train(tiny_cfg.replace(eval_samples=100, epochs=3, sample_every=2), sink, images=mnist_slice)
    assert [e.epoch for e in sink.of(EpochQuality)] == [1, 2, 3]
    sink = ListSink()  # max_steps ends the run 4 steps into epoch 2: that part-epoch is scored too
    train(tiny_cfg.replace(eval_samples=100, max_steps=12), sink, images=mnist_slice)
    assert [(e.epoch, e.step) for e in sink.of(EpochQuality)] == [(1, 8), (2, 12)]


def test_quality_scoring_leaves_the_training_rng_alone(tiny_cfg, mnist_slice):
    # Loading the classifier the first time in a process must not shift dropout masks of the run being scored.
    from gan_core.events import ListSink, StepMetrics
    from gan_core.trainer import train
    metrics.load_classifier.cache_clear()
    a, b = ListSink(), ListSink()
    train(tiny_cfg.replace(eval_samples=200), a, images=mnist_slice)  # loads the classifier after epoch 1
    train(tiny_cfg.replace(eval_samples=200), b, images=mnist_slice)  # classifier already cached
    assert [e.d_loss for e in a.of(StepMetrics)] == [e.d_loss for e in b.of(StepMetrics)]


def test_class_fidelity_counts_agreement_with_the_requested_class():
    from gan_core.data import load_dataset, to_float
    from gan_core.metrics import measure
    images, labels = load_dataset("mnist", "test", limit=500)
    right = measure(to_float(images), "mnist", labels)
    wrong = measure(to_float(images), "mnist", (labels + 1) % 10)  # every image asked for as another class
    assert right.fidelity > 0.97 and wrong.fidelity < 0.03
    assert len(right.fidelity_per_class) == 10 and min(right.fidelity_per_class) > 0.9
    assert "fidelity" in right.to_dict() and "fidelity" not in measure(to_float(images), "mnist").to_dict()


def test_the_shipped_conditional_generator_draws_the_class_asked_for():
    from gan_core.checkpoint import load_generator, shipped_generators
    from gan_core.metrics import measure_generator
    g, cfg, _ = load_generator(shipped_generators()["dcgan-conditional-mnist"])
    q = measure_generator(g, cfg, 1000)
    assert cfg.conditional and q.fidelity >= 0.97 and q.inception_score > 9.0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_gpu_run_is_scored_on_the_gpu_with_the_cpu_numbers():
    x, _ = load_dataset("mnist", "test", limit=500)
    cpu, gpu = metrics.measure(to_float(x), "mnist"), metrics.measure(to_float(x), "mnist", device="cuda")
    assert next(metrics.load_classifier("mnist", "cuda").parameters()).is_cuda
    assert gpu.inception_score == pytest.approx(cpu.inception_score, rel=0.01)
    assert gpu.fd == pytest.approx(cpu.fd, rel=0.05) and gpu.class_shares == pytest.approx(cpu.class_shares, abs=0.01)


def test_the_shipped_dense_generator_is_the_dense_ema_recipe_and_covers_every_digit():
    from gan_core.checkpoint import load_generator, read_header, shipped_generators
    from gan_core.config import TrainConfig
    from gan_core.metrics import measure_generator
    path = shipped_generators()["dense-mnist"]
    # What pretrain.sh reproduces; it was trained in bf16 on a CPU with bf16 units, which "auto" now picks by itself.
    shipped = read_header(path)["config"]
    assert shipped.precision == "bf16" and shipped.replace(precision="auto") == TrainConfig.from_preset("dense-ema")
    g, cfg, _ = load_generator(path)
    q = measure_generator(g, cfg, 2000)
    assert q.inception_score > 8.3 and 0.06 < min(q.class_shares) and max(q.class_shares) < 0.16


def test_mode_collapse_is_not_judged_on_noise_before_the_generator_could_learn():
    from gan_core.metrics import MIN_COLLAPSE_STEPS
    noise = _q([0.9] + [0.1 / 9] * 9)  # a classifier calls untrained noise "one class"
    early = detect_mode_collapse(noise, FLOOR, step=120)
    assert early.kind == "too_early" and "Too early to judge" in early.message
    assert "learning rate" not in early.suggestion.lower()  # no advice to change anything on noise
    assert detect_mode_collapse(noise, FLOOR, step=MIN_COLLAPSE_STEPS).kind == "mode_collapse"
    assert detect_mode_collapse(noise, FLOOR).kind == "mode_collapse"  # no step given: judged as before
    assert detect_mode_collapse(_q([0.1] * 10), FLOOR, step=10) is None  # nothing looks wrong: nothing said
