"""ui.py's settings for a public server: Streamlit's own options as the deployment's settings decide them."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from gan_core.runs.capability import Capabilities
from gan_core.runs.store import Store

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
    for line in ("GAN_DEMO_MODE=1", "STREAMLIT_CLIENT_TOOLBAR_MODE=viewer",
                 "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS=none", "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION=true",
                 'STREAMLIT_SERVER_MAX_UPLOAD_SIZE="${GAN_MAX_UPLOAD_MB'):
        assert line in script


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} write them) of the sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    found.append(local.rsplit(":", 1)[0])
    return found


def _outward_address() -> str | None:
    """This machine's address on its way out (no packet is sent), if it has one that is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc/net writes them


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc/net/tcp")
def test_serve_demo_listens_on_loopback_only(tmp_path):
    """Issue 27: serve_demo.sh listened on every interface (and Streamlit answers any Host): only the proxy in front
    may reach it."""
    from browser import free_port, wait_http

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "GAN_"))}
    env |= {"GAN_HOME": str(tmp_path / "home"), "GAN_NO_AUTOWORKER": "1", "PYTHON": sys.executable}
    with open(tmp_path / "demo.log", "wb") as log:
        proc = subprocess.Popen([str(ROOT / "scripts" / "serve_demo.sh"), "--server.port", str(port),
                                 "--browser.gatherUsageStats", "false"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}", proc)
        listening = _listening(port)
        assert listening and set(listening) <= LOOPBACK, listening
        if outward := _outward_address():
            with pytest.raises(OSError), socket.create_connection((outward, port), timeout=5):
                pass  # refused: nothing listens there
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_serve_demo_listens_elsewhere_only_when_told(tmp_path):
    fake = tmp_path / "python"  # stands in for the interpreter: says what it was started with
    fake.write_text('#!/bin/sh\necho "address=$STREAMLIT_SERVER_ADDRESS"\necho "hops=$GAN_TRUSTED_PROXY_HOPS"\n'
                    'echo "argv=$*"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "GAN_"))} | {"PYTHON": str(fake)}

    def run(*args: str, **extra: str) -> str:
        return subprocess.run([str(ROOT / "scripts" / "serve_demo.sh"), *args], env=env | extra, check=True,
                              capture_output=True, text=True).stdout

    assert "address=127.0.0.1\nhops=1\n" in run()  # behind the proxy on this host: its X-Forwarded-For is trusted
    assert "address=0.0.0.0\nhops=\n" in run(GAN_DEMO_ADDRESS="0.0.0.0")  # anyone could send the header
    assert "hops=2\n" in run(GAN_TRUSTED_PROXY_HOPS="2")
    assert "argv=-m streamlit run app.py --server.address 10.0.0.5\n" in run("--server.address", "10.0.0.5")
    assert "hops=\n" in run("--server.address", "10.0.0.5")
    assert "hops=\n" in run("--server.address=0.0.0.0")


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
    """The texts as a reader sees them (text.plain backslash-escapes markdown characters)."""
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
