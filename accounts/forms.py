from django import forms
from django.contrib.admin import forms as admin_forms
from django.contrib.auth import authenticate
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from . import selectors
from .models import User


class AccountUniquenessMixin:
    """Refuse a username or an e-mail address that another account has, in any spelling."""

    account_error_messages = {
        "username_taken": _("A user with that username already exists."),
        "email_taken": _("An account already uses this e-mail address."),
    }

    def clean_username(self):
        username = self.cleaned_data.get("username")
        if selectors.username_in_use(username=username, other_than=self.instance):
            raise ValidationError(self.account_error_messages["username_taken"], code="unique")
        return username

    def clean_email(self):
        email = self.cleaned_data.get("email")
        if selectors.email_in_use(email=email, other_than=self.instance):
            raise ValidationError(self.account_error_messages["email_taken"], code="email_taken")
        return email


class SignupForm(AccountUniquenessMixin, auth_forms.UserCreationForm):
    """Sign up with a username, an optional e-mail address and a checked password."""

    class Meta(auth_forms.UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


@sensitive_variables("password")
def is_password_of(request, user, password):
    """
    Return whether ``password`` is ``user``'s, checked as a login is.

    Through authenticate(): the check spends the account's and the client's
    budgets (accounts.throttling), and a wrong password is a failed login.
    """
    found = authenticate(request, username=user.get_username(), password=password)
    return found is not None and found.pk == user.pk


class AdminUserCreationForm(AccountUniquenessMixin, auth_forms.AdminUserCreationForm):
    """The admin's "add user" form, with the site's account rules."""


class AdminUserChangeForm(AccountUniquenessMixin, auth_forms.UserChangeForm):
    """The admin's user change form, with the site's account rules."""


class PasswordResetRequestForm(forms.Form):
    """Ask for the e-mail address of the account whose password is forgotten."""

    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class ReauthenticationForm(forms.Form):
    """Ask for the current password again before a sensitive action."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    error_messages = {
        "password_incorrect": _("That is not your password. Enter it again to confirm."),
        "password_required": _("Enter your password to confirm."),
    }

    def __init__(self, *args, request, **kwargs):
        self.request = request
        self.user = request.user
        super().__init__(*args, **kwargs)
        self.fields["password"].error_messages["required"] = self.error_messages["password_required"]

    @method_decorator(sensitive_variables("password"))
    def clean_password(self):
        password = self.cleaned_data["password"]
        if not is_password_of(self.request, self.user, password):
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return password


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's password change form, checking the old password as a login is."""

    def __init__(self, user, *args, request, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    @method_decorator(sensitive_variables("old_password"))
    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        if not is_password_of(self.request, self.user, old_password):
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class AdminPasswordChangeForm(PasswordChangeForm, admin_forms.AdminPasswordChangeForm):
    """The admin site's password change form, checking the old password as a login is."""
