"""The forecast app (Streamlit): a client of the front door and the forecasts database."""
