"""moto's S3 server with create-only writes made atomic, as real S3 makes them.

moto 5.2.5 checks `If-None-Match: *` (and `If-Match`) and then stores the object in two
steps on a threaded server, so two conditional PUTs of one key can both succeed. The
catalog's version race (docs/contract.md section 2, "one writer per version") relies on
exactly one of them winning, as on S3. This launcher runs moto's own WSGI application with
one lock around every conditional write; everything else runs concurrently as before.

Usage: s3_server.py [-H HOST] [-p PORT]; prints werkzeug's "Running on http://HOST:PORT".
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class AtomicConditionalWrites:
    """WSGI middleware: a PUT or POST that carries If-None-Match or If-Match runs alone."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        conditional = environ.get("REQUEST_METHOD") in ("PUT", "POST") and (
            "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        )
        if not conditional:
            return self.app(environ, start_response)
        with self.lock:
            # moto builds the whole body before returning: the check and the store both
            # happen inside this call.
            return list(self.app(environ, start_response))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        AtomicConditionalWrites(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
