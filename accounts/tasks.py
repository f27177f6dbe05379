"""Work the account flows hand off the request path."""

from django.core.mail import EmailMessage
from django.tasks import task
from django.template import loader


@task
def send_password_reset_mail(*, to, username, reset_url):
    """Render the password reset mail for ``username`` and send it to ``to``."""
    context = {"username": username, "reset_url": reset_url}
    subject = loader.render_to_string("registration/password_reset_subject.txt", context)
    body = loader.render_to_string("registration/password_reset_email.txt", context)
    # A subject must be one line, whatever the template left in it.
    EmailMessage(" ".join(subject.split()), body, to=[to]).send()
