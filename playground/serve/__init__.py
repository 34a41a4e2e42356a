"""Serve flow versions as an HTTP API, record every call as a run, monitor and alert on them."""
