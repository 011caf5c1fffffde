"""Logger, Tracer and Metrics, created once per process and shared by every module.

The service name comes from ``POWERTOOLS_SERVICE_NAME``, which the function helper sets to
the function's name, so one import serves every function.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from aios.config import METRICS_NAMESPACE

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)
