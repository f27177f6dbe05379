from importlib import import_module

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessiondemo.sessions.exceptions import SessionStoreUnavailable


class Command(BaseCommand):
    help = (
        "Prune what expired sessions leave behind. Redis expires the sessions "
        "themselves; this prunes the per-user session indexes. Safe to run from "
        "cron while the site serves traffic."
    )

    def handle(self, **options):
        engine = import_module(settings.SESSION_ENGINE)
        try:
            report = engine.SessionStore.clear_expired()
        except NotImplementedError as e:
            raise CommandError(
                f"Session engine '{settings.SESSION_ENGINE}' doesn't support clearing expired sessions."
            ) from e
        except SessionStoreUnavailable as e:
            raise CommandError(str(e)) from e
        if report is not None and options["verbosity"] >= 1:
            self.stdout.write(f"clearsessions: {report}.")
