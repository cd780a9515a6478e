"""gunicorn's settings for the web process (docs/production.md):

    gunicorn config.wsgi -c config/gunicorn.py

Threaded workers: a request waiting on a slow client occupies a thread, not a whole
process, and the arbiter's timeout (a worker's heartbeat, not a request's duration) no
longer kills a long upload with WORKER TIMEOUT. Slow clients are still best kept off the
workers entirely by a buffering reverse proxy (deploy/nginx.conf). Command-line options
override these (e.g. `--workers 4`, or GUNICORN_CMD_ARGS).
"""

bind = "0.0.0.0:8000"
worker_class = "gthread"
workers = 2
threads = 8
timeout = 120
graceful_timeout = 30
# Idle keep-alive connections wait in the worker's poller, without a thread.
keepalive = 5
accesslog = "-"
