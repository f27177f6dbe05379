"""The site's authentication backend: Django's, with every password check throttled."""

from asgiref.sync import sync_to_async
from django.contrib.auth import check_password_with_timing_attack_mitigation, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.views.decorators.debug import sensitive_variables

from . import throttling

UserModel = get_user_model()


class ThrottledModelBackend(ModelBackend):
    """
    Django's ModelBackend, spending an attempt of the account's and the client's budgets.

    A locked account or client raises throttling.LoginThrottled out of
    authenticate(), before the password is looked at; the middleware turns it
    into the 429 page.
    """

    @sensitive_variables("password")
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(UserModel.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = UserModel._default_manager.get_by_natural_key(username)
        except UserModel.DoesNotExist:
            user = None
        attempt = throttling.start(request, user=user, username=username)
        if check_password_with_timing_attack_mitigation(user, password) and self.user_can_authenticate(user):
            attempt.succeeded()
            return user
        attempt.failed()
        return None

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        # Django's async version checks the password itself; this one throttles.
        return await sync_to_async(self.authenticate)(request, username, password, **kwargs)
