from django.contrib.auth.models import AbstractUser
from django.db import models

from . import emails


class User(AbstractUser):
    """The site's user; a custom model from the first migration, as Django advises."""

    # The address as emails.canonical() spells it, unique: one account per
    # address however it is typed, on SQLite (whose LIKE folds ASCII only) as on
    # PostgreSQL. None for an account without one. Kept up to date by save().
    email_canonical = models.TextField(null=True, unique=True, editable=False)

    def save(self, **kwargs):
        self.email_canonical = emails.canonical(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_canonical"}
        super().save(**kwargs)
