"""Text any visitor may read: ids read from links one way, server paths cut from errors, failure reasons in words
(gan_core.web.text, events.redact_paths)."""
import pytest

from gan_core.config import ConfigError
from gan_core.web import text


def test_parse_id_takes_ascii_digits_in_range_only():
    assert [text.parse_id(v) for v in ("1", "42", "007", str(2**63 - 1), 7)] == [1, 42, 7, 2**63 - 1, 7]
    for bad in ("²", "١", "٣", "-1", "0", "1e3", "+1", " 1", "1 ", "1_0", "0x1", "", "9" * 30, str(2**63), None,
                True, 0, -3, 2**63, 1.0, ["1"]):
        assert text.parse_id(bad) is None, bad


def test_redact_paths_cuts_absolute_paths_and_leaves_other_slashes():
    from gan_core.events import redact_paths
    assert redact_paths("in:\n  /tmp/x/no-data/MNIST/raw\n  ~/data/mnist and (/opt/a/b.db), x=/etc/passwd.") == \
        "in:\n  raw\n  mnist and (b.db), x=passwd."
    assert redact_paths("cannot reach sqlite:////srv/gan/gan_studio.db: locked") == "cannot reach gan_studio.db: locked"
    kept = "images/s, D/G, 1/2, and/or, a / b, run-000001/samples"
    assert redact_paths(kept) == kept


def test_a_runs_failure_reason_is_words_not_an_exception_class(mnist_slice):
    from conftest import tiny

    from gan_core.events import Failed, ListSink
    from gan_core.trainer import failure_reason, train

    sink = ListSink()
    with pytest.raises(ConfigError):  # the caller (worker, CLI) still gets the error itself
        train(tiny(), sink, images=mnist_slice[:32])
    (failed,) = sink.of(Failed)
    # what the Runs page shows and the CLI prints after "failed: " (it was "ConfigError: batch_size: ...")
    assert failed.reason == "refused before training: batch_size: 64 is larger than the 32 training images"
    # an error nobody foresaw keeps its type: the one clue a bug report needs
    assert failure_reason(KeyError("g_ema"), 120) == "stopped by an unexpected error at step 120 (KeyError: 'g_ema')"
    # the stored reason names no server path; the event carries the whole error for the worker's log
    from gan_core.trainer import failed
    try:
        open("/srv/gan/run-000007/generator.safetensors")
    except OSError as e:
        ev = failed(e, 3)
    assert ev.reason == ("stopped by an unexpected error at step 3 (FileNotFoundError: [Errno 2] No such file or "
                         "directory: 'generator.safetensors')")
    assert "/srv/gan/run-000007/generator.safetensors" in ev.detail and "Traceback" in ev.detail
