from django.contrib import admin
from django.urls import reverse

from accounts.forms import AdminPasswordChangeForm
from accounts.views import AdminPasswordChangeView


class AdminSite(admin.AdminSite):
    """Django's admin site, whose password change checks the old password as a login is."""

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
