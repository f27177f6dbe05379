from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import engine, services
from sessiondemo.sessions import events
from sessiondemo.sessions.exceptions import SessionStoreUnavailable


class Command(BaseCommand):
    help = "End sessions now: every session of the named users, or every session there is."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--user", action="append", dest="usernames", metavar="USERNAME",
            help="End this user's sessions (repeat for more users).",
        )
        target.add_argument("--all", action="store_true", help="End every session of every user.")

    def handle(self, usernames=None, all=False, **options):
        if not (engine.ends_all_sessions() if all else engine.lists_user_sessions()):
            raise CommandError(
                "endsessions needs the session engine sessiondemo.sessions.backend; "
                f"SESSION_ENGINE is {engine.engine_name()!r}, which cannot end sessions this way."
            )
        try:
            if all:
                ended = engine.end_all_sessions(reason=events.ENDED_BY_COMMAND)
            else:
                ended = sum(
                    services.sessions_end_all(user_id=user.pk, reason=events.ENDED_BY_COMMAND)
                    for user in self.users(usernames)
                )
        except SessionStoreUnavailable as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Ended {ended} session{'s' if ended != 1 else ''}.")

    def users(self, usernames):
        User = get_user_model()
        users = list(User.objects.filter(**{f"{User.USERNAME_FIELD}__in": usernames}))
        missing = set(usernames) - {user.get_username() for user in users}
        if missing:
            raise CommandError(f"No such user: {', '.join(sorted(missing))}.")
        return users
