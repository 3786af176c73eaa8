"""The security tests reuse the conversation suite's running agent (real sandbox over mTLS, real audit)."""

from tests.conversations.conftest import agent

__all__ = ["agent"]
