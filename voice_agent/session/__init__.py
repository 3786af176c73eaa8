"""Ephemeral call sessions: in memory only, ended and wiped on hang-up, goodbye or inactivity."""

from voice_agent.audit import EndReason

from .manager import CallSession, SessionAuditor, SessionManager

__all__ = ["CallSession", "EndReason", "SessionAuditor", "SessionManager"]
