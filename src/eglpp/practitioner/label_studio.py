"""A small client of Label Studio's REST API: what ``eglpp select/import --label-studio`` need.

:class:`LabelStudio` talks to a server at a URL with the API token of the environment variable
``LABEL_STUDIO_API_KEY`` (never a flag or a file: tokens in shell history or run folders leak).
Both kinds of Label Studio token work: a legacy token is sent as ``Authorization: Token …``; a
personal access token (a JWT, Label Studio >= 1.17) is exchanged at ``/api/token/refresh/`` for a
short-lived access token sent as ``Authorization: Bearer …`` (renewed once on a 401).

The HTTP layer is ``requests`` (the ``eglpp[label-studio]`` extra); a test passes its own
``session`` (any object with ``request(method, url, **kwargs)`` returning a response with
``status_code``, ``json()`` and ``text``). Every failure is a :class:`LabelStudioError` (a
ValueError) in one line naming the flag or variable at fault: an unreachable server, a refused
token (401/403), an unknown project, any other refusal with the server's own message.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    import requests
except ImportError:  # the optional extra is not installed
    requests = None

__all__ = ["LabelStudio", "LabelStudioError", "TOKEN_VARIABLE", "connect"]

#: The environment variable holding the API token.
TOKEN_VARIABLE = "LABEL_STUDIO_API_KEY"
_JWT = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]+$")
_PAGE = 100  # tasks per page when listing a project's tasks


class LabelStudioError(ValueError):
    """A Label Studio request that failed, or a server answer eglpp cannot use (one line)."""


class LabelStudio:
    """A Label Studio server at ``url`` (``--label-studio``) with API ``token``."""

    def __init__(self, url: str, token: str, *, session: Any = None, timeout: float = 60.0):
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LabelStudioError(
                f"--label-studio {url}: expected the server's address, e.g. http://localhost:8080"
            )
        if not token:
            raise LabelStudioError(
                f"--label-studio {url}: set the API token in the environment variable "
                f"{TOKEN_VARIABLE} (Label Studio: Account & Settings → Access Token)"
            )
        if session is None:
            if requests is None:
                raise LabelStudioError(
                    "--label-studio needs the Python package requests: pip install "
                    "'eglpp[label-studio]'"
                )
            session = requests.Session()
        self.url = str(url).rstrip("/")
        self.path = parts.path.rstrip("/")  # a server behind a prefix: /label-studio
        self._token, self._session, self._timeout = token, session, timeout
        self._access: str | None = None  # the JWT access token of a personal access token

    # --- HTTP --------------------------------------------------------------------------
    def _auth(self, renew: bool = False) -> dict:
        if not _JWT.match(self._token):
            return {"Authorization": f"Token {self._token}"}
        if self._access is None or renew:
            answer = self._send("POST", "/api/token/refresh/", {}, json={"refresh": self._token})
            self._check_token(answer)
            self._access = self._json(answer, "POST /api/token/refresh/").get("access")
            if not self._access:
                raise LabelStudioError(
                    f"--label-studio {self.url}: the personal access token in {TOKEN_VARIABLE} "
                    "gave no access token (/api/token/refresh/)"
                )
        return {"Authorization": f"Bearer {self._access}"}

    def _send(self, method: str, path: str, headers: dict, **kwargs: Any) -> Any:
        try:
            answer = self._session.request(
                method, self.url + path, headers=headers, timeout=self._timeout, **kwargs
            )
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise LabelStudioError(
                f"--label-studio {self.url}: server unreachable ({reason})"
            ) from exc
        return answer

    def _check_token(self, answer: Any) -> Any:
        if answer.status_code in (401, 403):
            raise LabelStudioError(
                f"--label-studio {self.url}: the server refused the API token in "
                f"{TOKEN_VARIABLE} (HTTP {answer.status_code}: {_detail(answer)}); copy it "
                "again from Account & Settings (a legacy token needs legacy tokens enabled in "
                "the organization's settings)"
            )
        return answer

    def request(self, method: str, path: str, *, what: str | None = None, **kwargs: Any) -> Any:
        """The decoded JSON answer of ``method path``; ``what`` names the object for a 404."""
        answer = self._send(method, path, self._auth(), **kwargs)
        if answer.status_code == 401 and self._access is not None:  # an expired access token
            answer = self._send(method, path, self._auth(renew=True), **kwargs)
        self._check_token(answer)
        if answer.status_code == 404 and what:
            raise LabelStudioError(f"{what}: not found on {self.url}")
        if answer.status_code >= 400:
            raise LabelStudioError(
                f"--label-studio {self.url}: {method} {path} refused (HTTP "
                f"{answer.status_code}: {_detail(answer)})"
            )
        return self._json(answer, f"{method} {path}")

    def _json(self, answer: Any, what: str) -> Any:
        if answer.status_code == 204 or not answer.text:
            return {}
        try:
            return answer.json()
        except ValueError:
            raise LabelStudioError(
                f"--label-studio {self.url}: {what} answered HTTP {answer.status_code} with "
                f"something other than JSON ({answer.text[:80]!r}): is this a Label Studio server?"
            ) from None

    # --- the calls eglpp makes ---------------------------------------------------------
    def project(self, project: int) -> dict:
        """The project (``id``, ``title``, ``label_config``, …)."""
        return self.request("GET", f"/api/projects/{int(project)}", what=f"--project {project}")

    def set_model_version(self, project: int, version: str) -> dict:
        """Make ``version`` the project's model version: the predictions Label Studio shows
        annotators and orders tasks by (uncertainty sampling) are that version's."""
        return self.request("PATCH", f"/api/projects/{int(project)}", what=f"--project {project}",
                            json={"model_version": version})  # fmt: skip

    def create_project(self, title: str, label_config: str) -> dict:
        body = {"title": title, "label_config": label_config}
        return self.request("POST", "/api/projects", json=body)

    def tasks(self, project: int) -> Iterator[dict]:
        """Every task of the project with its annotations and predictions, page by page."""
        page, seen = 1, 0
        while True:
            answer = self.request(
                "GET", "/api/tasks", what=f"--project {project}",
                params={"project": int(project), "page": page, "page_size": _PAGE,
                        "fields": "all"},
            )  # fmt: skip
            tasks = answer.get("tasks", []) if isinstance(answer, dict) else answer
            yield from tasks
            seen += len(tasks)
            total = answer.get("total", seen) if isinstance(answer, dict) else seen
            if not tasks or seen >= total or len(tasks) < _PAGE:
                return
            page += 1

    def upload(self, project: int, path: Path) -> str:
        """Upload an image file to the project's storage without making a task; its URL there
        (``/data/upload/…``, which the server serves to its logged-in users)."""
        with open(path, "rb") as f:
            answer = self.request(
                "POST", f"/api/projects/{int(project)}/import", what=f"--project {project}",
                params={"commit_to_project": "false"}, files={Path(path).name: f},
            )  # fmt: skip
        ids = answer.get("file_upload_ids") or []
        if len(ids) != 1:
            raise LabelStudioError(f"--label-studio {self.url}: uploading {path} gave {answer}")
        files = self.request(
            "GET", f"/api/projects/{int(project)}/file-uploads", params={"ids": json.dumps(ids)}
        )
        name = files[0]["file"] if files and isinstance(files, list) else None
        if not name:
            raise LabelStudioError(f"--label-studio {self.url}: upload {ids[0]} has no file")
        return f"{self.path}/data/{name.lstrip('/')}"

    def import_tasks(self, project: int, tasks: list[dict]) -> list[int]:
        """Create ``tasks`` (with their predictions) in one request; their ids."""
        answer = self.request(
            "POST", f"/api/projects/{int(project)}/import", what=f"--project {project}",
            params={"return_task_ids": "true"}, json=tasks,
        )  # fmt: skip
        return list(answer.get("task_ids") or [])

    def annotate(self, task: int, result: list[dict], **fields: Any) -> dict:
        """Submit an annotation of ``task`` (what an annotator's Submit does)."""
        return self.request("POST", f"/api/tasks/{int(task)}/annotations",
                            json={"result": result, **fields})  # fmt: skip


def _detail(answer: Any) -> str:
    """The server's reason for a refusal, short."""
    try:
        body = answer.json()
    except ValueError:
        return (answer.text or "").strip()[:160] or "no reason given"
    if isinstance(body, dict):
        for key in ("validation_errors", "detail", "message", "error"):
            if body.get(key):
                return json.dumps(body[key])[:200] if key == "validation_errors" else \
                    str(body[key])[:200]  # fmt: skip
    return str(body)[:200]


def connect(url: str, *, session: Any = None, environ: dict | None = None) -> LabelStudio:
    """A :class:`LabelStudio` at ``url`` with the token of :data:`TOKEN_VARIABLE`."""
    token = (os.environ if environ is None else environ).get(TOKEN_VARIABLE, "").strip()
    return LabelStudio(url, token, session=session)
