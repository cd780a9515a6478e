"""Operating the site: health checks (health.py), Prometheus metrics (metrics.py), the
workers' own heartbeats (workers.py), the log context, request and submission ids
(logs.py) and error reporting (sentry.py). docs/production.md describes them."""
