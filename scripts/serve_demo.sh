#!/usr/bin/env bash
# The public demo (README "Public demo"): GAN Studio's demo caps plus Streamlit's settings for a public server, set
# in the environment so they hold from the very first page. Extra arguments go to `streamlit run`.
# It listens on 127.0.0.1 only: the reverse proxy in front (on this host) is the one way in, and it checks the Host
# header and bounds the upload endpoint (README "Deploying the public demo"). GAN_DEMO_ADDRESS=ADDR, or an explicit
# --server.address ADDR (a flag beats the environment in Streamlit), listens elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export GAN_DEMO_MODE=1
export STREAMLIT_CLIENT_TOOLBAR_MODE=viewer STREAMLIT_CLIENT_SHOW_ERROR_DETAILS=none
export STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION=true STREAMLIT_SERVER_HEADLESS=true
export STREAMLIT_SERVER_MAX_UPLOAD_SIZE="${GAN_MAX_UPLOAD_MB:-20}"
export STREAMLIT_SERVER_ADDRESS="${GAN_DEMO_ADDRESS:-127.0.0.1}"
# On loopback the proxy is the only way in, so its X-Forwarded-For names the client (the caps key on it). Listening
# elsewhere, a client could send that header itself: trust it only when GAN_TRUSTED_PROXY_HOPS says so.
if [[ "$STREAMLIT_SERVER_ADDRESS" == "127.0.0.1" && " $* " != *" --server.address"* ]]; then
    export GAN_TRUSTED_PROXY_HOPS="${GAN_TRUSTED_PROXY_HOPS:-1}"
fi
exec "${PYTHON:-.venv/bin/python}" -m streamlit run app.py "$@"
