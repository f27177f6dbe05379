import functools

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import SuspiciousOperation, ValidationError

from accounts.throttling import throttled_login


class AdminSite(admin.AdminSite):
    """
    Django's admin site, with the site's login throttling on its login page,
    and a 400 for an action on a selection that names no object.
    """

    def login(self, request, extra_context=None):
        return throttled_login(super().login)(request, extra_context)

    def admin_view(self, view, cacheable=False):
        model_admin = getattr(view, "__self__", None)
        if isinstance(model_admin, admin.ModelAdmin):
            view = selection_checked(view, model_admin.model)
        return super().admin_view(view, cacheable)


def selection_checked(view, model):
    """Refuse a POST whose action selection holds a value that is no primary key of ``model``."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            pk = model._meta.pk
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                # Django filters on the selection without a form: a value that
                # is no key fails in the query, a 500.
                try:
                    pk.run_validators(pk.to_python(value))
                except ValidationError:
                    raise SuspiciousOperation("An admin action on a selection that names no object.") from None
        return view(request, *args, **kwargs)

    return wrapper
