"""GAN Studio dashboard entry point: `streamlit run app.py`.

One Store per process (st.cache_resource) and one background worker per machine (`python -m gan_core worker`,
started detached if none is alive). The pages under pages/ only lay out what gan_core computes.
"""
import streamlit as st

import ui

st.set_page_config(page_title="GAN Studio", page_icon="🎛️", layout="wide")

ui.get_store()  # a database problem stops here with an st.error, before any page runs
ui.ensure_worker_once()

with st.sidebar:
    st.session_state.setdefault("owner_input", st.session_state.get("owner", "anonymous"))
    st.text_input("Your name", key="owner_input", max_chars=200,
                  help="Shown as the owner of the runs you start (real sign-in comes later).")
    st.session_state["owner"] = st.session_state["owner_input"]  # plain key: pages read it via ui.owner()

pages = [
    st.Page(ui.PAGES["train"], title="Train", icon="🏋️", default=True),
    st.Page(ui.PAGES["runs"], title="Runs", icon="📈"),
    st.Page(ui.PAGES["samples"], title="Samples", icon="🖼️"),
    st.Page(ui.PAGES["generate"], title="Generate", icon="✨"),
    st.Page(ui.PAGES["compare"], title="Compare", icon="⚖️"),
]
st.navigation(pages).run()
