from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import CreateView

from . import services
from .forms import SignupForm


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class SignupView(CreateView):
    form_class = SignupForm
    template_name = "registration/signup.html"
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your account is ready. Log in to continue.")
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out: your session was deleted on the server.")
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    success_url = reverse_lazy("accounts:password_change_done")

    def form_valid(self, form):
        # Django's view saves the password and moves this session to a new id.
        response = super().form_valid(form)
        # Django ends the other sessions lazily, at their next request; end them now.
        services.sessions_end_others(user=form.user, current=self.request.session)
        return response
