import functools

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.urls import reverse
from django.utils.text import smart_split

from accounts.forms import AdminPasswordChangeForm
from accounts.views import AdminPasswordChangeView

# Each search term is a clause of the query, and SQLite refuses an expression
# more than 1000 deep; nobody types this many.
MAX_SEARCH_TERMS = 100


class AdminSite(admin.AdminSite):
    """
    Django's admin site, whose password change checks the old password as a
    login is, and which answers 400 for what its views would send to the
    database without a form and the database cannot take (see input_checked).
    """

    password_change_form = AdminPasswordChangeForm

    def password_change(self, request, extra_context=None):
        # Django's own builds a view that gives the form no request, which the
        # throttled check of the old password needs.
        defaults = {
            "form_class": self.password_change_form,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return AdminPasswordChangeView.as_view(**defaults)(request)

    def admin_view(self, view, cacheable=False):
        model_admin = getattr(view, "__self__", None)
        model = model_admin.model if isinstance(model_admin, admin.ModelAdmin) else None
        return super().admin_view(input_checked(view, model), cacheable)


def input_checked(view, model=None):
    """
    Refuse a search (a changelist's or the autocomplete's) of more than
    MAX_SEARCH_TERMS terms, and an action on a selection that holds a value
    that is no primary key of ``model``.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        for name in (SEARCH_VAR, "term"):
            if len(list(smart_split(request.GET.get(name, "")))) > MAX_SEARCH_TERMS:
                raise SuspiciousOperation(f"An admin search of more than {MAX_SEARCH_TERMS} terms.")
        if model is not None and request.method == "POST":
            pk = model._meta.pk
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                try:
                    pk.run_validators(pk.to_python(value))
                except ValidationError:
                    raise SuspiciousOperation("An admin action on a selection that names no object.") from None
        return view(request, *args, **kwargs)

    return wrapper
