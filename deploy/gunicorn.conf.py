"""
gunicorn's configuration for the site over WSGI (scripts/serve --server wsgi).

Run from the project's directory:
    gunicorn -c deploy/gunicorn.conf.py [--bind HOST:PORT] [--workers N]
Settings come from the environment (sessiondemo/settings/base.py), as for manage.py.
"""

import os

from sessiondemo.serving import default_workers, server_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessiondemo.settings.base")

wsgi_app = "sessiondemo.wsgi:application"
bind = ["localhost:8000"]

# A process per CPU (a request is mostly Python), and threads in each, so that
# a request waiting on Redis, the database or a slow client does not hold up
# the process, and so that connections are kept alive.
workers = default_workers()
worker_class = "gthread"
threads = 4

# A worker whose main loop stops answering gunicorn's heartbeat for this long
# is killed and replaced.
timeout = 30
# SIGTERM: stop accepting, let the requests in flight finish within this
# time, then exit 0. SIGINT (Ctrl-C) and SIGQUIT stop at once.
graceful_timeout = 20
# Longer than a proxy's own idle timeout towards the site (nginx:
# keepalive_timeout 4s in the upstream block), so that the proxy closes an
# idle connection first and never sends a request on one gunicorn is closing.
keepalive = 5

# Who the client is and whether it used HTTPS are Django's to decide
# (DJANGO_TRUSTED_PROXY_COUNT, DJANGO_SECURE_PROXY_SSL_HEADER); by default
# gunicorn would take X-Forwarded-Proto and the like from any local peer.
forwarded_allow_ips = ""
secure_scheme_headers = {}
forwarder_headers = ""

# gunicornc's control socket: unused here, and its path ($XDG_RUNTIME_DIR or
# ~/.gunicorn) would be shared by every gunicorn the same user runs.
control_socket_disable = True

# Peer, request line, status, bytes sent, time taken, referrer, user agent;
# through the site's console handler, which leaves out health checks.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'
logconfig_dict = server_logging("gunicorn.error", "gunicorn.access")
