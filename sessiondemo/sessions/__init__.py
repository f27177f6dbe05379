"""A Redis session engine for Django: one hash per session, JSON fields, no pickle."""
