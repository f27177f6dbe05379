from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from sessiondemo.sessions import events

from . import engine, selectors, services
from .forms import AdminUserChangeForm, AdminUserCreationForm
from .models import User

# What the admin says on a session engine that cannot end a user's sessions.
CANNOT_END_SESSIONS = _(
    "The session store cannot end sessions by user: a new password, or deactivating the account, "
    "signs the user out at their next request."
)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin, plus the user's live sessions and a way to end them."""

    form = AdminUserChangeForm
    add_form = AdminUserCreationForm
    change_form_template = "admin/accounts/user/change_form.html"
    actions = ["end_all_sessions"]
    readonly_fields = ("active_sessions",)
    fieldsets = (*DjangoUserAdmin.fieldsets, (_("Sessions"), {"fields": ("active_sessions",)}))

    @admin.display(description=_("Active sessions"))
    def active_sessions(self, user):
        if user.pk is None:
            return "—"
        sessions = selectors.session_list_for_user(user=user)
        if sessions is None:
            return _("The session store cannot list sessions.")
        return render_to_string("admin/accounts/user/sessions_table.html", {"sessions": sessions})

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_end_sessions"] = engine.lists_user_sessions()
        return super().render_change_form(request, context, *args, **kwargs)

    def has_end_sessions_permission(self, request):
        """Offer the action to those who may change users, on an engine that can end their sessions."""
        return engine.lists_user_sessions() and self.has_change_permission(request)

    @admin.action(description=_("Sign out of all sessions"), permissions=["end_sessions"])
    def end_all_sessions(self, request, queryset):
        ended = 0
        for user in queryset:
            count = services.sessions_end_all(user_id=user.pk, reason=events.ENDED_BY_ADMIN)
            self.log_change(request, user, f"Signed out of all sessions ({count} ended).")
            ended += count
        self.message_user(
            request,
            ngettext("%(count)d session ended.", "%(count)d sessions ended.", ended) % {"count": ended},
            messages.SUCCESS,
        )

    def get_urls(self):
        end_sessions = self.admin_site.admin_view(self.end_sessions_view)
        return [
            path("<id>/end-sessions/", end_sessions, name="accounts_user_end_sessions"),
            *super().get_urls(),
        ]

    def end_sessions_view(self, request, id):
        if request.method != "POST":
            return redirect(reverse("admin:accounts_user_change", args=[id]))
        user = self.get_object(request, unquote(id))
        if user is None:
            raise Http404
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        if engine.lists_user_sessions():
            self.end_all_sessions(request, User.objects.filter(pk=user.pk))
        else:
            self.message_user(request, CANNOT_END_SESSIONS, messages.WARNING)
        return redirect(reverse("admin:accounts_user_change", args=[user.pk]))
