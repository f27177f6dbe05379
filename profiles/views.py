from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.generic import UpdateView, View

from .forms import ProfileForm
from .models import Profile


class ProfileDetailView(View):
    """
    Show the user's profile, or send a visitor to log in: an async view.

    Under ASGI it reads the session on the event loop, with no thread; only
    the database queries (Django's ORM is sync) take one each.
    """

    template_name = "profiles/profile_detail.html"

    async def dispatch(self, request, *args, **kwargs):
        # Whatever the method: LoginRequiredMixin's order, without its thread for the test.
        if not (await request.auser()).is_authenticated:
            return redirect_to_login(request.get_full_path())
        return await super().dispatch(request, *args, **kwargs)

    async def get(self, request):
        user = await request.auser()
        profile = (await Profile.objects.aget_or_create(user=user))[0]
        # Rendered here, not by a TemplateResponse in a thread: the page reads
        # nothing lazily (the user, the profile and the messages are loaded).
        return render(request, self.template_name, {"profile": profile})


class ProfileUpdateView(LoginRequiredMixin, UpdateView):
    form_class = ProfileForm
    template_name = "profiles/profile_form.html"
    success_url = reverse_lazy("profiles:detail")

    def get_object(self, queryset=None):
        return Profile.objects.get_or_create(user=self.request.user)[0]

    def form_valid(self, form):
        messages.success(self.request, "Your profile is saved.")
        return super().form_valid(form)
