"""Metrics and tracing: the worker's Temporal runtime with its Prometheus endpoint
(`runtime.py`), the o2o domain metrics counted from activities (`domain.py`), the API's
`/metrics` (`api.py`) and optional OpenTelemetry tracing (`tracing.py`)."""
