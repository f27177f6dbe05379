from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The site's user; a custom model from the first migration, as Django advises."""
