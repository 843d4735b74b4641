"""ui.py's settings for a public server: Streamlit's own options as the deployment's settings decide them."""
import tomllib
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from gan_core.capability import Capabilities
from gan_core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_demo_mode_sets_streamlits_public_server_options(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GAN_NO_AUTOWORKER", "1")
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_MAX_UPLOAD_MB", "7")
    config.set_option("client.toolbarMode", "developer")  # what a careless operator might have
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert config.get_option("client.toolbarMode") == "viewer"
    assert config.get_option("client.showErrorDetails") == "none"
    assert config.get_option("server.maxUploadSize") == 7  # Streamlit's own upload check matches ours
    assert config.get_option("server.enableXsrfProtection") is True


def test_the_shipped_config_is_safe_for_a_server():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["showErrorDetails"] == "none"  # every mode: errors are st.error text, never tracebacks
    assert cfg["server"]["enableXsrfProtection"] is True and cfg["server"]["maxUploadSize"] == 20
    script = (ROOT / "scripts" / "serve_demo.sh").read_text()
    for line in ("GAN_DEMO_MODE=1", "STREAMLIT_CLIENT_TOOLBAR_MODE=viewer", "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS=none",
                 "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION=true", 'STREAMLIT_SERVER_MAX_UPLOAD_SIZE="${GAN_MAX_UPLOAD_MB'):
        assert line in script


# --- which workers can train a run (issue 26): said on Train before Start, and on Runs while it waits ------------
def _page(page: str, run_id: int | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if run_id is not None:
        at.query_params["run"] = str(run_id)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def team(tmp_path, monkeypatch):
    """A store with one live CPU-only worker (a laptop) and no worker started by the app."""
    monkeypatch.setenv("GAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GAN_DB_URL", raising=False)
    monkeypatch.setenv("GAN_NO_AUTOWORKER", "1")
    s = Store()
    s.worker_beat("laptop-1", 1, "laptop", Capabilities(host="laptop", cpu="x86"))
    yield s
    s.dispose()


def _shown(elements) -> list[str]:
    """The texts as a reader sees them (dash.plain backslash-escapes markdown characters)."""
    return [e.value.replace("\\", "") for e in elements]


def test_train_says_before_start_that_no_live_worker_has_a_gpu(team):
    at = _page("pages/train.py")
    assert ":material/memory: Live workers that can train it: laptop: CPU only." in _shown(at.caption)  # auto
    assert not [w for w in _shown(at.warning) if "CUDA GPU" in w]
    next(w for w in at.selectbox if w.key == "cfg.device").set_value("cuda")
    at.run()
    assert any(s.value.startswith("Valid:") for s in at.success)  # the config itself is fine
    [warn] = [w for w in _shown(at.warning) if "CUDA GPU" in w]
    assert warn == ("No live worker has a CUDA GPU (live: laptop: CPU only). Start queues the run anyway: it waits "
                    "in the queue until a worker with a CUDA GPU registers.")
    team.worker_beat("gpu-1", 2, "gpu-box", Capabilities(host="gpu-box", gpus=("NVIDIA H100",)))
    at.run()
    assert not [w for w in _shown(at.warning) if "CUDA GPU" in w]
    assert ":material/memory: Live workers that can train it: gpu-box: 1 GPU (NVIDIA H100)." in _shown(at.caption)


def test_runs_shows_why_a_gpu_run_waits_while_only_cpu_workers_are_live(team):
    from gan_core.config import TrainConfig
    run_id = team.submit(TrainConfig(epochs=1, device="cuda"), name="needs a GPU")
    assert team.claim("laptop-1", cap=1, caps=team.workers()[0]["capabilities"]) is None  # the laptop skips it
    at = _page("pages/runs.py", run_id)
    assert not [w for w in _shown(at.warning) if "No training worker" in w]
    [warn] = [w for w in _shown(at.warning) if "waits in the queue" in w]
    assert "no live worker has a CUDA GPU (live: laptop: CPU only)" in warn
    [status] = at.dataframe[0].value["status"]
    assert status == "queued (1st): no live worker can train it"
    assert team.get(run_id).status == "queued" and team.get(run_id).error is None
