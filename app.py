"""GAN Studio dashboard entry point: `streamlit run app.py`.

One Store per process (st.cache_resource) and one background worker per machine (`python -m gan_core worker`,
started detached if none is alive). The pages under pages/ only lay out what gan_core computes.
"""
import streamlit as st
import torch

import ui

# The server only samples small batches; two OpenMP threads contending with a worker that trains on both cores
# made a 4 ms generator call take ~100 ms. One thread keeps Generate fast while training runs.
torch.set_num_threads(1)

st.set_page_config(page_title="GAN Studio", page_icon=":material/tune:", layout="wide")
ui.apply_server_profile()

ui.get_store()  # a database problem stops here with an st.error, before any page runs
ui.ensure_worker_once()

with st.sidebar:
    ui.identity_sidebar()
    if ui.settings().demo_mode:
        st.caption("Public demo: runs are small and capped, and old runs are removed automatically.")

pages = [
    st.Page(ui.PAGES["home"], title="Home", icon=":material/home:", default=True),
    st.Page(ui.PAGES["train"], title="Train", icon=":material/model_training:"),
    st.Page(ui.PAGES["runs"], title="Runs", icon=":material/monitoring:"),
    st.Page(ui.PAGES["samples"], title="Samples", icon=":material/grid_view:"),
    st.Page(ui.PAGES["generate"], title="Generate", icon=":material/auto_awesome:"),
    st.Page(ui.PAGES["compare"], title="Compare", icon=":material/compare:"),
]
st.navigation(pages).run()
