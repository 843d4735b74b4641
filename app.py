"""GAN Studio dashboard entry point: `streamlit run app.py`.

One Store per process (st.cache_resource) and one background worker per machine (`python -m gan_core worker`,
started detached if none is alive), both set up by `ui.frame`, which also draws the sidebar; st.navigation routes
to the pages under pages/, which only lay out what gan_core computes (`ui.run_app`).
"""
import ui

ui.run_app()
