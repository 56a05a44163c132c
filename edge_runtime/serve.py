"""``kws-edge serve``: an upload page and a JSON API (Flask app, served by waitress).

API: ``POST /api/predict`` (multipart field ``file`` or a raw ``audio/wav`` body),
``GET /api/health``, ``GET /api/model``, ``GET /api/openapi.yaml``. Errors are JSON
``{"error": "..."}`` with a 4xx status; unexpected failures are logged here and answered
with a bare 500. Flask and waitress are imported only when serving (extra ``[serve]``).
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
from pathlib import Path

from edge_runtime.errors import KwsError

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
OPENAPI_PATH = HERE / "openapi.yaml"
WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
DEFAULT_TOP_K = 5
MAX_AUDIO_S = 60.0
MAX_UPLOAD_MB = 1024
MIN_TOKEN_CHARS = 16
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'")

log = logging.getLogger("kws_edge.serve")


class UnsupportedType(KwsError):
    """A request body that is neither multipart nor a WAV (HTTP 415)."""


def _flask():
    try:
        import flask
    except ImportError:
        raise KwsError("the server needs Flask and waitress: install kws-edge[serve]") from None
    return flask


def create_app(model, max_upload_mb: float = 2.0, max_audio_s: float = MAX_AUDIO_S,
               api_token: str | None = None):
    """The Flask app around one :class:`~edge_runtime.model.KwsModel`.

    The interpreter is not thread-safe: every inference holds one lock (decoding and
    resampling run outside it). With ``api_token``, ``POST /api/predict`` needs
    ``Authorization: Bearer <token>`` (compared in constant time), else answers 401.
    """
    flask = _flask()
    app = flask.Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 1024 * 1024)
    app.json.sort_keys = False
    _add_error_handlers(app, flask, max_upload_mb)
    _add_security_headers(app, flask)
    _add_info_routes(app, flask, model)
    _add_predict_route(app, flask, model, max_audio_s, api_token)
    return app


def _error(flask, status: int, message: str):
    """A JSON ``{"error": message}`` response with ``status``."""
    return flask.jsonify(error=message), status


def _add_error_handlers(app, flask, max_upload_mb: float) -> None:
    """HTTP errors as JSON (413 says which limit was hit); anything else a logged bare 500."""
    from werkzeug.exceptions import HTTPException

    max_bytes = app.config["MAX_CONTENT_LENGTH"]

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = exc.get_response()  # keeps headers such as Allow on 405
        length = flask.request.content_length
        if exc.code == 413 and length is not None and length <= max_bytes:
            message = (f"multipart form too complex: more than {app.config['MAX_FORM_PARTS']} "
                       f"parts or a non-file field over {app.config['MAX_FORM_MEMORY_SIZE']:,} "
                       "bytes; send the WAV alone in the field 'file'")
        elif exc.code == 413:
            message = f"upload too large: the limit is {max_upload_mb:g} MB"
        else:
            message = f"{exc.name}: {exc.description}"
        response.set_data(json.dumps({"error": message}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error on %s %s", flask.request.method, flask.request.path)
        return _error(flask, 500, "internal server error")


def _add_security_headers(app, flask) -> None:
    """No sniffing or referrer on every response, a CSP on pages, no caching of the API."""

    @app.after_request
    def headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = CSP
        if flask.request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def _add_info_routes(app, flask, model) -> None:
    """The upload page, ``/api/health``, ``/api/model`` and ``/api/openapi.yaml``."""
    from edge_runtime.interpreter import interpreter_class

    @app.get("/")
    def index():
        return app.send_static_file("index.html")

    @app.get("/api/health")
    def health():
        return {"status": "ok", "model": model.path.name, "labels": len(model.labels)}

    @app.get("/api/model")
    def model_info():
        return {"model": model.path.name, "interpreter": interpreter_class()[0],
                **model.manifest.to_dict()}

    @app.get("/api/openapi.yaml")
    def openapi():
        return flask.Response(OPENAPI_PATH.read_bytes(), mimetype="application/yaml")


def _add_predict_route(app, flask, model, max_audio_s: float, api_token: str | None) -> None:
    """``POST /api/predict``: token check, upload to audio, one locked inference, JSON."""
    lock = threading.Lock()

    @app.post("/api/predict")
    def predict():
        if api_token is not None and not token_ok(flask.request.headers, api_token):
            return _unauthorized(flask)
        t0 = time.perf_counter()
        try:
            top_k = _top_k_arg(flask.request, len(model.labels))
            audio = _upload_audio(flask.request, max_audio_s)
            with lock:
                pred = model.classify(audio, top_k=top_k)
        except UnsupportedType as exc:
            return _error(flask, 415, str(exc))
        except KwsError as exc:
            return _error(flask, 400, str(exc))
        return _prediction_json(pred, audio, t0)


def _unauthorized(flask):
    """The 401 answer to a missing or wrong API token."""
    response, status = _error(flask, 401, "missing or wrong API token: send the header "
                                          "'Authorization: Bearer <KWS_API_TOKEN>'")
    response.headers["WWW-Authenticate"] = 'Bearer realm="kws-edge"'
    return response, status


def _top_k_arg(request, n_labels: int) -> int:
    """The ``top_k`` query argument (1-100, at most ``n_labels``); default 5."""
    raw = request.args.get("top_k")
    if raw is None:
        return min(DEFAULT_TOP_K, n_labels)
    try:
        k = int(raw)
    except ValueError:
        k = 0
    if not 1 <= k <= 100:
        raise KwsError(f"top_k must be an integer from 1 to 100, got {raw[:20]!r}")
    return min(k, n_labels)


def _upload(request) -> bytes:
    """The WAV bytes of a multipart field ``file`` or of a raw WAV body."""
    if request.mimetype == "multipart/form-data":
        file = request.files.get("file")
        if file is None:
            raise KwsError("no file: send the WAV in the multipart field 'file'")
        return file.read()
    if request.mimetype in WAV_TYPES:
        return request.get_data(cache=False)
    raise UnsupportedType(f"unsupported content type {request.mimetype or '(none)'!r}: "
                          "send multipart/form-data with a field 'file' or an audio/wav "
                          "body")


def _upload_audio(request, max_audio_s: float):
    """The uploaded WAV decoded; :class:`KwsError` if empty, unreadable or too long."""
    from edge_runtime.wav import decode_wav

    data = _upload(request)
    if not data:
        raise KwsError("empty upload")
    audio = decode_wav(data, "upload")
    if audio.seconds > max_audio_s:
        raise KwsError(f"audio too long ({audio.seconds:.1f} s): the limit is "
                       f"{max_audio_s:g} s")
    return audio


def _prediction_json(pred, audio, t0: float) -> dict:
    """The predict answer: the prediction, request latency since ``t0`` and the duration."""
    result = pred.to_dict()
    return {
        "label": result["label"],
        "probability": result["probability"],
        "top_k": result["top_k"],
        "latency_ms": round((time.perf_counter() - t0) * 1e3, 3),
        "duration_s": round(audio.seconds, 3),
        "timings_ms": result["timings_ms"],
        **({"detections": result["detections"]} if "detections" in result else {}),
    }


def token_ok(headers, token: str) -> bool:
    scheme, _, given = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                               token.encode())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_token(host: str) -> str | None:
    """``$KWS_API_TOKEN``; required (16+ characters) when ``host`` is not a loopback address."""
    token = os.environ.get("KWS_API_TOKEN") or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise KwsError(f"KWS_API_TOKEN is too short: use {MIN_TOKEN_CHARS}+ characters "
                       "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if token is None and not is_loopback(host):
        raise KwsError(f"--host {host} opens the API beyond this machine: set KWS_API_TOKEN "
                       "(clients then send 'Authorization: Bearer <token>')")
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    from edge_runtime.model import KwsModel
    from edge_runtime.paths import default_model

    token = api_token(args.host)
    model = KwsModel(args.model or default_model())
    app = create_app(model, max_upload_mb=args.max_upload_mb, api_token=token)
    try:
        from edge_runtime.serve_http import default_request_timeout, make_server
    except ImportError:
        raise KwsError("the server needs Flask and waitress: install kws-edge[serve]") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Flask answers uploads over the limit with a JSON 413; waitress drops anything far
    # bigger before it is buffered (with a JSON 413 too).
    try:
        server = make_server(app, args.host, args.port, args.threads,
                             4 * int(args.max_upload_mb * 1024 * 1024) + 65536,
                             args.request_timeout or default_request_timeout(args.max_upload_mb))
    except OSError as exc:
        raise KwsError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})"
                       ) from None
    print(f"kws-edge: serving {model.path.name} on http://{args.host}:{args.port}/ "
          f"({args.threads} threads{', API token required' if token else ''}); Ctrl-C stops",
          flush=True)
    server.run()
    return 0


def host_address(text: str) -> str:
    """An argparse type: an IP address, or a host name that resolves (e.g. localhost)."""
    import ipaddress
    import socket

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not text or len(text) > 253 or text[0].isdigit() and text.replace(".", "").isdigit():
        raise argparse.ArgumentTypeError(f"not an IP address or host name: {text[:60]!r}")
    try:
        socket.getaddrinfo(text, None)
    except (socket.gaierror, UnicodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot resolve host {text[:60]!r} ({exc})") from None
    return text


def add_parser(subparsers) -> None:
    from edge_runtime.cmdline import MAX_THREADS, float_range, int_range

    p = subparsers.add_parser("serve", help="upload page and JSON API")
    p.add_argument("--host", type=host_address, default="127.0.0.1",
                   help="address to listen on; another than loopback (0.0.0.0: the LAN) needs "
                        "KWS_API_TOKEN in the environment")
    p.add_argument("--port", type=int_range(1, 65535), default=8080, help="1-65535")
    p.add_argument("--model", type=Path, help="a .tflite model (default: the shipped one)")
    p.add_argument("--max-upload-mb", type=float_range(0, MAX_UPLOAD_MB, above=True),
                   default=2.0, help=f"request size limit (up to {MAX_UPLOAD_MB} MB)")
    p.add_argument("--threads", type=int_range(1, MAX_THREADS), default=4,
                   help="server worker threads")
    p.add_argument("--request-timeout", type=float_range(0, 3600, above=True, unit=" s"),
                   help="seconds a request's header and body may take to arrive (default "
                        "10 + 8 per MB of --max-upload-mb)")
    p.set_defaults(func=cmd_serve)
