"""The dashboard's pages through Streamlit's AppTest: no browser, the real Store on a temporary GAN_HOME.

A package, so that its conftest.py is imported as app.conftest: a second top-level `conftest` module would replace
tests/conftest.py in sys.modules, and the `from conftest import ...` of every later test module would find this one."""
