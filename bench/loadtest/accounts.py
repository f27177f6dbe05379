"""The load test's accounts: one per virtual user (locustfile.py), created and reset by run.py."""

from .flow import PASSWORDS, USERNAME


def create(count):
    """Create the accounts of ``count`` virtual users (each gets a profile, as any new user)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    for index in range(count):
        user = User(username=USERNAME.format(index))
        user.set_password(PASSWORDS[0])
        user.save()


def reset():
    """Give every load-test account its first password back (a user stopped mid-flow may not have)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    prefix = USERNAME.split("{")[0]
    get_user_model().objects.filter(username__startswith=prefix).update(password=make_password(PASSWORDS[0]))
