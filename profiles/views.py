from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.urls import reverse_lazy
from django.views.generic import TemplateView, UpdateView

from .forms import ProfileForm
from .models import Profile


class ProfileDetailView(LoginRequiredMixin, TemplateView):
    template_name = "profiles/profile_detail.html"

    def get_context_data(self, **kwargs):
        profile = Profile.objects.get_or_create(user=self.request.user)[0]
        return super().get_context_data(profile=profile, **kwargs)


class ProfileUpdateView(LoginRequiredMixin, UpdateView):
    form_class = ProfileForm
    template_name = "profiles/profile_form.html"
    success_url = reverse_lazy("profiles:detail")

    def get_object(self, queryset=None):
        return Profile.objects.get_or_create(user=self.request.user)[0]

    def form_valid(self, form):
        messages.success(self.request, "Your profile is saved.")
        return super().form_valid(form)
