from django.contrib import messages
from django.contrib.auth import SESSION_KEY
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import IntegrityError, transaction
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import CreateView, TemplateView

from sessiondemo.responses import too_many_requests
from sessiondemo.sessions import events

from . import cookies, engine, ratelimits, selectors, services
from .forms import (
    AdminPasswordChangeForm,
    PasswordChangeForm,
    PasswordResetRequestForm,
    ReauthenticationForm,
    SignupForm,
)


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class SignupView(CreateView):
    form_class = SignupForm
    template_name = "registration/signup.html"
    success_url = reverse_lazy("accounts:login")

    def post(self, request, *args, **kwargs):
        # Each answer says whether a username is taken: one client gets only so many.
        if retry_after := ratelimits.signup_blocked_for(request):
            return too_many_requests(request, retry_after)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            with transaction.atomic():
                response = super().form_valid(form)
        except IntegrityError:
            # A concurrent sign-up took the name or the address after this form
            # checked them; checked again, the form says which.
            form = self.get_form()
            if form.is_valid():
                form.add_error(None, "That account could not be created. Try again.")
            return self.form_invalid(form)
        messages.success(self.request, "Your account is ready. Log in to continue.")
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out: your session was deleted on the server.")
        # Pages the browser kept of the logged-in site go too; cookies are
        # left to Set-Cookie, which carries the message above.
        response["Clear-Site-Data"] = '"cache", "storage"'
        return response


class PasswordCheckView(auth_views.PasswordChangeView):
    """Django's password change view, giving its form the request to check the old password as a login."""

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class AdminPasswordChangeView(PasswordCheckView):
    form_class = AdminPasswordChangeForm


class PasswordChangeView(PasswordCheckView):
    form_class = PasswordChangeForm
    success_url = reverse_lazy("accounts:password_change_done")

    def form_valid(self, form):
        # Django's view saves the password (which ends the other sessions, see
        # signals.py) and moves this session to a new id.
        response = super().form_valid(form)
        services.session_authenticated(session=self.request.session)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetRequestForm
    success_url = reverse_lazy("accounts:password_reset_done")

    def post(self, request, *args, **kwargs):
        if retry_after := ratelimits.password_reset_blocked_for(request):
            return too_many_requests(request, retry_after)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        services.password_reset_request(email=form.cleaned_data["email"])
        return redirect(self.get_success_url())


@method_decorator(
    [login_not_required, sensitive_post_parameters(), never_cache], name="dispatch"
)
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view, with the link's token kept in a signed cookie instead of the session."""

    success_url = reverse_lazy("accounts:password_reset_complete")

    def dispatch(self, request, *args, uidb64, token, **kwargs):
        self.validlink = False
        self.user = self.get_user(uidb64)
        if token != self.reset_url_token:
            if retry_after := ratelimits.password_reset_link_blocked_for(request):
                return too_many_requests(request, retry_after)
            if self.user is not None and self.token_generator.check_token(self.user, token):
                # As Django does: on to a URL without the token, which so stays out
                # of Referer headers; the browser keeps it meanwhile.
                response = redirect(
                    "accounts:password_reset_confirm", uidb64=uidb64, token=self.reset_url_token
                )
                cookies.remember_reset_token(response, uidb64, token)
                return response
        else:
            token = cookies.remembered_reset_token(request, uidb64)
            if self.user is not None and self.token_generator.check_token(self.user, token):
                self.validlink = True
                # Past Django's dispatch, which would look for the token in the session.
                return super(auth_views.PasswordResetConfirmView, self).dispatch(
                    request, *args, uidb64=uidb64, token=self.reset_url_token, **kwargs
                )
        return self.render_to_response(self.get_context_data())

    def form_valid(self, form):
        # Every session ends, this browser's too, before the new password can
        # open one; saving it then ends any that a login made meanwhile.
        services.sessions_end_all(user_id=form.user.pk, reason=events.ENDED_BY_PASSWORD_RESET)
        form.save()
        if self.request.session.get(SESSION_KEY) == str(form.user.pk):
            # This browser's own session was one of them: forget it here too, or
            # saving it at the end of the request would fail (a 400).
            self.request.session.flush()
        response = redirect(self.get_success_url())
        cookies.forget_reset_token(response)
        return response


class SessionListView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/session_list.html"

    def get_context_data(self, **kwargs):
        session = self.request.session
        return super().get_context_data(
            sessions=selectors.session_list_for_user(user=self.request.user, current=session),
            reauthentication_due=services.reauthentication_due(session=session),
            **kwargs,
        )


# What "Your sessions" says on a session engine that cannot list or end a user's sessions.
CANNOT_END_SESSIONS = (
    "This site's session store cannot sign out other sessions from here. Changing your password does."
)


@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class SessionEndingView(LoginRequiredMixin, View):
    """End sessions of the logged-in user, asking for the password again when due."""

    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        if not engine.lists_user_sessions():
            messages.error(request, CANNOT_END_SESSIONS)
            return redirect("accounts:session_list")
        session = request.session
        if services.reauthentication_due(session=session):
            form = ReauthenticationForm(request.POST, request=request)
            if not form.is_valid():
                return self.refuse(form)
            services.session_reauthenticated(session=session)
        message = self.end_sessions(request, **kwargs)
        messages.success(request, message)
        return redirect("accounts:session_list")

    def refuse(self, form):
        view = SessionListView(request=self.request)
        context = view.get_context_data(reauthentication_form=form)
        return view.render_to_response(context, status=403)

    def end_sessions(self, request, **kwargs):
        raise NotImplementedError


class SessionEndView(SessionEndingView):
    def end_sessions(self, request, handle):
        services.session_end(user=request.user, handle=handle, current=request.session)
        return "That session is signed out."


class SessionEndOthersView(SessionEndingView):
    def end_sessions(self, request):
        ended = services.sessions_end_others(user=request.user, current=request.session)
        return f"Signed out of {ended} other session{'s' if ended != 1 else ''}."
