"""Send the session model to whichever database the benchmark is measuring."""


class SessionRouter:
    """Route django.contrib.sessions to ``SessionRouter.alias``; leave the rest alone."""

    alias = "default"

    def db_for_read(self, model, **hints):
        return self.alias if model._meta.app_label == "sessions" else None

    def db_for_write(self, model, **hints):
        return self.db_for_read(model, **hints)
