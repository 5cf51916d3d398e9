"""Names shared by the server and its clients (kernels, the browser), in one place.

The server side and the kernel side are separate layers that must not import each
other; what both must agree on lives here.
"""

ENV_URL = "BGTASKS_URL"
"""Environment variable with the bgtasks REST base URL, set for kernels the server starts."""
ENV_TOKEN = "BGTASKS_TOKEN"
"""Environment variable with the per-server kernel secret (``Authorization: bgtasks <it>``)."""
ENV_ROOT = "BGTASKS_ROOT"
"""Environment variable with the server's ``root_dir`` (absolute), set for kernels the server
starts: notebook jobs name their notebook relative to that root, and a kernel turns a path
relative to its own working directory into one relative to the root with it."""
PICKLE_TYPE = "application/vnd.bgtasks.pickle"
"""Media type of a pickled result (``Accept`` it on ``GET tasks/{id}/result``)."""
