"""The live web console: a static page that speaks WAMP over the router's own WebSocket.

``index.html`` and ``console.js`` are package resources; the page joins a realm
as a client of its own (``?url=ws://HOST:PORT/ws&realm=REALM``, default
``ws://<page host>:8080/ws`` and ``realm1``) and reads the meta API and
``fastwamp.router.get_stats``, so it shows nothing its role could not see.
Serve it with :func:`console_page`, or open ``index.html`` from disk.
"""

from __future__ import annotations

from importlib import resources

#: Resource name -> content type.
CONTENT_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
SCRIPT_TAG = b'<script src="console.js"></script>'


def _read(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def console_page(path: str) -> tuple[str, bytes] | None:
    """The content type and body for ``path`` under the console's URL (``""``, ``"/"``,
    ``"/index.html"``, ``"/console.js"``; a leading ``/console`` is ignored), or None.

    The page comes with its script inlined, so it works at ``/console`` and at
    ``/console/`` alike.
    """
    name = path.split("?", 1)[0]
    if name.startswith("/console"):
        name = name[len("/console"):]
    name = name.strip("/") or "index.html"
    if name not in CONTENT_TYPES:
        return None
    body = _read(name)
    if name == "index.html":
        script = _read("console.js").replace(b"</script", b"<\\/script")
        body = body.replace(SCRIPT_TAG, b"<script>\n" + script + b"\n</script>")
    return CONTENT_TYPES[name], body
