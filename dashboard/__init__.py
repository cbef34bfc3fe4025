"""The faces of upscope: the CLI, the Streamlit dashboard and the Prometheus exposition."""
