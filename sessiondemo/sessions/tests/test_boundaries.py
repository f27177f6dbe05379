"""
The engine is a part others can lift: it imports nothing of the site, and a
copy of it under another name runs in another Django project on its defaults.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import sessiondemo.sessions
from sessiondemo.testing.redis_server import free_port

ENGINE = Path(sessiondemo.sessions.__file__).resolve().parent
PACKAGE = "sessiondemo.sessions"
# The project's other top-level packages: the engine may name none of them.
SITE_PACKAGES = ("sessiondemo", "accounts", "profiles")
# A dotted path into the project, as a setting's default or an import_string() would name one.
DOTTED_PATH = re.compile(rf"(?:{'|'.join(SITE_PACKAGES)})(?:\.[A-Za-z_]\w*)*")


def engine_modules():
    """Every module of the engine but its tests, as (path, dotted package it lives in)."""
    for path in sorted(ENGINE.rglob("*.py")):
        parts = path.relative_to(ENGINE).parts
        if "tests" in parts:
            continue
        yield path, ".".join((PACKAGE, *parts[:-1]))


def named_modules(source, package):
    """Yield every module that ``source`` (a module of ``package``) imports or names in a dotted string."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # "from .. import x" climbs out of the package: resolve it as Python does.
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED_PATH.fullmatch(node.value):
            yield node.value


def is_site_module(module):
    top = module.split(".")[0]
    inside = module == PACKAGE or module.startswith(PACKAGE + ".")
    return top in SITE_PACKAGES and not inside


def test_the_detector_sees_imports_that_leave_the_package_however_they_are_spelled():
    source = textwrap.dedent(
        """
        import sessiondemo.clients
        from sessiondemo import throttle
        from .. import logsafe
        from ..responses import too_many_requests
        from accounts.selectors import session_list_for_user
        import profiles
        from . import conf
        from .keys import is_well_formed
        DEFAULT = "sessiondemo.responses.service_unavailable"
        LOGGER = "sessiondemo.sessions.events"
        """
    )

    found = {m for m in named_modules(source, PACKAGE) if is_site_module(m)}

    assert {
        "sessiondemo.clients",
        "sessiondemo.throttle",
        "sessiondemo.logsafe",
        "sessiondemo.responses.too_many_requests",
        "accounts.selectors.session_list_for_user",
        "profiles",
        "sessiondemo.responses.service_unavailable",
    } <= found
    assert not [m for m in found if m.startswith(PACKAGE)]


def test_no_module_of_the_engine_imports_or_names_the_rest_of_the_project():
    modules = list(engine_modules())
    assert {path.name for path, _ in modules} >= {"backend.py", "middleware.py", "conf.py"}

    offenders = {
        f"{path.relative_to(ENGINE)}: {module}"
        for path, package in modules
        for module in named_modules(path.read_text(), package)
        if is_site_module(module)
    }

    assert not offenders, sorted(offenders)


# -- A copy of the engine in another project ---------------------------------------------

LIFTED = "liftedsessions"

SITE = f'''
"""A minimal Django project: settings, URLconf and views in one module."""

import os

from django.http import HttpResponse
from django.urls import path

SECRET_KEY = "another-project-" + "s3cr3t" * 8
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes"]
MIDDLEWARE = ["{LIFTED}.middleware.SessionMiddleware"]
ROOT_URLCONF = "anothersite"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
CACHES = {{
    "default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    "sessions": {{
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["ANOTHER_REDIS_URL"],
        "OPTIONS": {{
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": 1.0,
            "SOCKET_TIMEOUT": 1.0,
        }},
    }},
}}
SESSION_ENGINE = "{LIFTED}.backend"
SESSION_CACHE_ALIAS = "sessions"
SESSION_REDIS_KEY_PREFIX = "another:"
SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 3


def write(request):
    request.session["value"] = request.GET["value"]
    return HttpResponse("written")


def read(request):
    return HttpResponse(request.session.get("value", ""))


urlpatterns = [path("write/", write), path("read/", read)]
'''

RUN = '''
"""Drive the other project with Django's test client; print what a browser would see, as JSON."""

import json
import sys

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402


def seen(response):
    return {
        "status": response.status_code,
        "body": response.content.decode(errors="replace"),
        "retry_after": response.get("Retry-After"),
        "cache_control": response.get("Cache-Control"),
        "cookie": response.cookies["sessionid"].value if "sessionid" in response.cookies else None,
    }


browser = Client()
written = seen(browser.get("/write/", {"value": "42"}))
read = seen(browser.get("/read/"))
session_id = written["cookie"]

# An id of the right shape whose check character is wrong: one this server never issued.
guess = session_id[:-1] + ("a" if session_id[-1] != "a" else "b")
guesses = []
for _ in range(4):
    guesser = Client()
    guesser.cookies["sessionid"] = guess
    guesses.append(seen(guesser.get("/read/")))

down = dict(settings.CACHES)
down["sessions"] = {**down["sessions"], "LOCATION": sys.argv[1]}
with override_settings(CACHES=down):
    outage = seen(browser.get("/read/"))

print(json.dumps({
    "written": written,
    "read": read,
    "guesses": guesses,
    "outage": outage,
    "site_modules": sorted(
        m for m in sys.modules if m.split(".")[0] in ("sessiondemo", "accounts", "profiles")
    ),
}))
'''


def test_a_copy_of_the_engine_under_another_name_serves_another_django_project(redis_server, redis, tmp_path):
    shutil.copytree(ENGINE, tmp_path / LIFTED, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    (tmp_path / "anothersite.py").write_text(SITE)
    (tmp_path / "run.py").write_text(RUN)
    # Only the temporary directory is on the path: nothing of this project can be imported.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "anothersite",
        "ANOTHER_REDIS_URL": redis_server.url,
    }
    nowhere = f"redis://127.0.0.1:{free_port()}/0"

    result = subprocess.run(
        [sys.executable, "run.py", nowhere],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    # A session is created in Redis, under the other project's prefix, and read back.
    written, read = seen["written"], seen["read"]
    assert written["status"] == 200 and re.fullmatch(r"[a-z0-9]{32}", written["cookie"])
    assert read["status"] == 200 and read["body"] == "42"
    assert "no-store" in read["cache_control"]
    assert [k for k in redis.scan_iter("another:s:*")]
    # Ids it never issued are counted per REMOTE_ADDR: at the limit, a plain 429.
    assert [g["status"] for g in seen["guesses"]] == [200, 200, 429, 429]
    too_many = seen["guesses"][2]
    assert int(too_many["retry_after"]) > 0 and "no-store" in too_many["cache_control"]
    # Redis down: a plain 503, and the browser keeps its cookie.
    outage = seen["outage"]
    assert outage["status"] == 503
    assert int(outage["retry_after"]) > 0 and "no-store" in outage["cache_control"]
    assert outage["cookie"] is None
    assert "Traceback" not in outage["body"] and "redis://" not in outage["body"]
    # And nothing of this project was imported on the way.
    assert seen["site_modules"] == []
