from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import emails, usernames


class UserManager(DjangoUserManager):
    def get_by_natural_key(self, username):
        """Return the account named ``username`` in any spelling (see usernames.canonical)."""
        return self.get(username_canonical=usernames.canonical(username))


class User(AbstractUser):
    """The site's user; a custom model from the first migration, as Django advises."""

    username = models.CharField(
        _("username"),
        max_length=150,
        unique=True,
        help_text=_(
            "Required. 150 characters or fewer. Letters of one script, digits and @/./+/-/_ only."
        ),
        validators=[UnicodeUsernameValidator(), usernames.validate_single_script],
        error_messages={"unique": _("A user with that username already exists.")},
    )
    # The name and the address as usernames.canonical() and emails.canonical()
    # spell them, unique: one account per name and per address however they are
    # typed, on SQLite (whose LIKE folds ASCII only) as on PostgreSQL. No
    # address, no canonical one. save() keeps both up to date.
    username_canonical = models.TextField(unique=True, editable=False)
    email_canonical = models.TextField(null=True, unique=True, editable=False)

    objects = UserManager()

    def save(self, **kwargs):
        self.username_canonical = usernames.canonical(self.username)
        self.email_canonical = emails.canonical(self.email)
        if (update_fields := kwargs.get("update_fields")) is not None:
            derived = {"username": "username_canonical", "email": "email_canonical"}
            kwargs["update_fields"] = {*update_fields, *(derived[f] for f in derived if f in update_fields)}
        super().save(**kwargs)
