"""What the dashboard pages compute, and their charts, without Streamlit."""
