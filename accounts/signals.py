"""Keep sessions in step with the accounts they belong to; remember the devices that log in."""

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from sessiondemo.clients import client_ip, client_user_agent
from sessiondemo.sessions import events

from . import devices, engine, services
from .middleware import request_session


@receiver(user_logged_in, dispatch_uid="accounts.session_logged_in")
def session_logged_in(sender, request, user, **kwargs):
    # Django keeps the id when the session's own user logs in again; a login
    # always deserves a new one.
    engine.new_id_at_login(request.session)
    services.session_authenticated(session=request.session)
    engine.record_client(request.session, ip=client_ip(request), user_agent=client_user_agent(request))


@receiver(user_logged_in, dispatch_uid="accounts.remember_device")
def remember_device(sender, request, user, **kwargs):
    devices.remember(request, user)


@receiver(user_logged_out, dispatch_uid="accounts.session_logged_out")
def session_logged_out(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if user is not None and session is not None and session.session_key:
        events.log_event(
            events.ENDED, reason=events.ENDED_BY_LOGOUT, user_id=user.pk, session=engine.handle(session)
        )


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.note_deactivation")
def note_deactivation(sender, instance, raw=False, update_fields=None, **kwargs):
    instance._accounts_deactivated = (
        not raw
        and not instance.is_active
        and instance.pk is not None
        and (update_fields is None or "is_active" in update_fields)
        and sender.objects.filter(pk=instance.pk, is_active=True).exists()
    )


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.note_password_change")
def note_password_change(sender, instance, raw=False, update_fields=None, **kwargs):
    # set_password() keeps the new password in _password until the save (Django
    # runs its password_changed() validators from it); set_unusable_password()
    # leaves only the hash. A hash upgraded at login keeps the password: no change.
    instance._accounts_password_changed = (
        not raw
        and instance.pk is not None
        and (update_fields is None or "password" in update_fields)
        and (
            instance._password is not None
            or (
                not instance.has_usable_password()
                and sender.objects.filter(pk=instance.pk)
                .exclude(password=instance.password)
                .exists()
            )
        )
    )


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.end_deactivated")
def end_sessions_of_deactivated_user(sender, instance, **kwargs):
    if getattr(instance, "_accounts_deactivated", False):
        end_sessions_now_and_on_commit(instance.pk, events.ENDED_BY_DEACTIVATION)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.end_password_changed")
def end_sessions_of_changed_password(sender, instance, **kwargs):
    # Django ends the other sessions lazily, at their next request, and only
    # where a view asks it to; whatever changed the password, end them now.
    if getattr(instance, "_accounts_password_changed", False):
        session = request_session()
        # The request that changed its own user's password keeps its session.
        own = session if session is not None and session.get(SESSION_KEY) == str(instance.pk) else None
        end_sessions_now_and_on_commit(instance.pk, events.ENDED_BY_PASSWORD_CHANGE, keep=own)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.end_deleted")
def end_sessions_of_deleted_user(sender, instance, **kwargs):
    end_sessions_now_and_on_commit(instance.pk, events.ENDED_BY_DELETION)


def end_sessions_now_and_on_commit(user_id, reason, *, keep=None):
    """End the sessions of ``user_id`` but ``keep``, now and again once the transaction commits."""

    def end():
        services.sessions_end_all(user_id=user_id, reason=reason, keep=keep)

    end()
    if connection.in_atomic_block:
        # Until the transaction commits, a login still finds the old account
        # state; whatever session it made ends with the commit.
        transaction.on_commit(end)
