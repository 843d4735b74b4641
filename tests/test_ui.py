"""ui.py's settings for a public server: Streamlit's own options as the deployment's settings decide them."""
import tomllib
from pathlib import Path

from streamlit import config
from streamlit.testing.v1 import AppTest

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
