"""Operating the site: health checks (health.py), Prometheus metrics (metrics.py) and the
log context, request and submission ids (logs.py). docs/production.md describes them."""
