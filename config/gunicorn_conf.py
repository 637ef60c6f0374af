"""gunicorn settings of the web server, shared by the Dockerfile, docker-compose and bench/labeling.py.

    gunicorn -c config/gunicorn_conf.py config.wsgi

The defaults are the configuration bench/labeling.py measured best on a 2-core machine (README,
"Labeling throughput"): a few processes of gthread workers (threads overlap one request's database wait
with another's Python), and keep-alive connections so a browser's pane, image and static requests reuse
one connection instead of a TCP handshake each. Each setting can be changed through the environment.
https://docs.gunicorn.org/en/stable/settings.html
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Seconds an idle keep-alive connection stays open (gthread keeps it without holding a thread).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Connections a process accepts at once (threads plus the idle keep-alive ones it waits on).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
