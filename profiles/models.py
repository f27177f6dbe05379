from django.conf import settings
from django.db import models


class Profile(models.Model):
    """What a user shows about themselves; one per user, made with the user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=80, blank=True)
    bio = models.TextField(max_length=2000, blank=True)

    def __str__(self):
        return self.display_name or self.user.get_username()
