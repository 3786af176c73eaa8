"""The image's HEALTHCHECK: GET /healthz on the agent's own listener; exit 0 when it answers 200.

Runs with the image's Python (there is no shell or curl in the image). The certificate is not verified:
this asks the agent's own socket whether the process is alive, it does not establish who is talking.
"""

import os
import ssl
import sys
import urllib.request

host = os.environ.get("VOICE_AGENT_SERVE_HOST", "127.0.0.1")
host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
port = os.environ.get("VOICE_AGENT_SERVE_PORT", "8443")
plain = os.environ.get("VOICE_AGENT_SERVE_ALLOW_PLAIN_HTTP", "").lower() in ("1", "true", "yes", "on")
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
url = f"{'http' if plain else 'https'}://{host}:{port}/healthz"
try:
    with urllib.request.urlopen(url, timeout=5, context=None if plain else context) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
