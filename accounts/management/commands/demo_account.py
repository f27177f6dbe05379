from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.crypto import get_random_string


class Command(BaseCommand):
    help = (
        "Create or reset the development demo account, a superuser so that the "
        "admin can be tried too, and print its credentials (DEBUG only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")

    def handle(self, **options):
        if not settings.DEBUG:
            raise CommandError("The demo account is for development only (DJANGO_DEBUG=true).")
        password = get_random_string(16)
        user, created = get_user_model().objects.get_or_create(username=options["username"])
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        self.stdout.write(
            f"Demo account {'created' if created else 'reset'}: "
            f"username {user.get_username()!r}, password {password!r}"
        )
