"""GAN Studio dashboard entry point: `streamlit run app.py`."""
import streamlit as st

st.set_page_config(page_title="GAN Studio", page_icon="🎛️", layout="wide")
st.title("GAN Studio")
st.write("Train the classic MNIST GANs from the command line for now: `python -m gan_core train --preset "
         "seed003-dcgan --out runs/first`. The dashboard arrives next.")
