"""Label Studio's ML backend protocol over HTTP (FastAPI), on a :class:`LiveLoop`.

The routes Label Studio calls (its ``ml/api_connector.py``): ``GET /health``; ``POST /setup``
(``{"project": "<id>.<created>", "schema": <labelling config>, …}`` → ``{"model_version"}``);
``POST /predict`` (``{"tasks": [...], "project", "label_config", "params"}`` → ``{"results":
[one prediction per task, in order]}``) and ``POST /webhook`` (the webhook Label Studio makes for
the ML backend: ``{"action", "annotation", "task", "project"}``; ``ANNOTATION_CREATED`` and
``ANNOTATION_UPDATED`` are recorded, other actions answered and ignored).

With an access token every request must carry it: ``Authorization: Bearer TOKEN`` or
``Token TOKEN``, or HTTP basic auth with TOKEN as the password (Label Studio's "Authentication"
setting of an ML backend: Basic Auth, any user name). Without it: 401.

Bad requests get a 4xx with ``{"detail": message}``: 400 malformed JSON or fields, a request of
another project; 401 no or another token; 404 a task whose image is not in the pool; 422 an
annotation the checks of ``eglpp import`` refuse (a label that is no joint, a joint outside the
image, the pre-annotation unchanged). A record is written whole or not at all.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

try:  # the optional extra eglpp[label-studio-backend]
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse
except ImportError as exc:
    raise ImportError(f"eglpp label-studio-backend needs {exc.name}: pip install "
                      "'eglpp[label-studio-backend]'", name=exc.name) from None

from eglpp.pose.datasets.base import AnnotationError
from eglpp.practitioner.label_studio import LabelStudioError
from eglpp.practitioner.live_loop import LiveLoop, UnknownTask
from eglpp.service.worker import Worker

__all__ = ["create_app", "BadRequest", "LEARNS_FROM"]

#: The webhook actions that record an annotation.
LEARNS_FROM = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


class BadRequest(ValueError):
    """A request the backend refuses: ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _authorised(header: str, token: str) -> bool:
    kind, _, value = header.partition(" ")
    if kind.lower() == "basic":
        try:
            value = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif kind.lower() not in ("bearer", "token"):
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


async def _body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"{request.url.path}: the body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise BadRequest(400, f"{request.url.path}: expected a JSON object, got {kind}")
    return body


def _project_id(value: object, where: str) -> int | None:
    """A project's id from Label Studio's ``"<id>.<created>"``, a number or ``{"id"}``."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None:
        return None
    try:
        return int(str(value).split(".")[0])
    except ValueError:
        raise BadRequest(400, f"{where}: project {value!r} is no Label Studio project id") from None


def _check_project(project: int | None, given: int | None, where: str) -> None:
    if project is not None and given is not None and given != project:
        raise BadRequest(400, f"{where}: project {given} is not this backend's project "
                              f"{project} (--project)")  # fmt: skip


def _guard(app: FastAPI, token: str | None) -> None:
    """The token check (every route) and the answers to refused requests."""

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if token and not _authorised(request.headers.get("authorization", ""), token):
            return JSONResponse({"detail": "missing or wrong access token (Authorization: "
                                 "Bearer TOKEN, or basic auth with TOKEN as the password)"},
                                status_code=401, headers={"WWW-Authenticate": "Basic"})  # fmt: skip
        return await call_next(request)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(UnknownTask)
    async def unknown(request: Request, exc: UnknownTask):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ValueError)  # AnnotationError, LabelStudioError: refused input
    async def refused(request: Request, exc: ValueError):
        return JSONResponse({"detail": str(exc)}, status_code=422)


def create_app(loop: LiveLoop, worker: Worker, *, project: int | None = None,
               token: str | None = None) -> FastAPI:  # fmt: skip
    """The backend's app; ``project`` (``--project``) the one project it answers."""
    app = FastAPI(title="eglpp label-studio-backend", docs_url=None, redoc_url=None)

    _guard(app, token)
    def version() -> str:
        return loop.state.current()["model_version"]

    @app.get("/health")
    def health() -> dict:
        return {"status": "UP", "model_class": "eglpp", "model_version": version(),
                "retraining": worker.busy, "pending": len(loop.state.pending()),
                "error": worker.error}  # fmt: skip

    @app.post("/setup")
    async def setup(request: Request) -> dict:
        body = await _body(request)
        _check_project(project, _project_id(body.get("project"), "/setup"), "/setup")
        if body.get("schema"):
            loop.use_label_config({"id": body.get("project"), "label_config": body["schema"]})
        return {"model_version": version()}

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        body = await _body(request)
        _check_project(project, _project_id(body.get("project"), "/predict"), "/predict")
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise BadRequest(400, "/predict: expected \"tasks\": a list of task objects")
        results = await run_in_threadpool(loop.predictions, tasks)  # off the event loop
        return {"results": results, "model_version": results[0]["model_version"] if results
                else version()}  # fmt: skip

    @app.post("/webhook")
    async def webhook(request: Request) -> dict:
        body = await _body(request)
        action = body.get("action")
        if action not in LEARNS_FROM:
            return {"status": "ignored", "action": action}
        task, annotation = body.get("task"), body.get("annotation")
        if not isinstance(task, dict) or not isinstance(annotation, dict) or "id" not in task:
            raise BadRequest(400, f"/webhook {action}: expected \"task\" (with its id) and "
                                  "\"annotation\" objects")  # fmt: skip
        given = _project_id(body.get("project") or task.get("project"), f"/webhook {action}")
        _check_project(project, given, f"/webhook {action} of task {task['id']}")
        if annotation.get("was_cancelled"):
            return {"status": "ignored", "action": action, "reason": "skipped by the annotator"}
        try:
            recorded = await run_in_threadpool(loop.annotate, task, annotation)
        except (AnnotationError, LabelStudioError) as exc:
            raise BadRequest(422, str(exc)) from None
        worker.poke()
        return {"status": "recorded", **recorded, "model_version": version()}

    return app
