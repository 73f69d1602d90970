"""Long-running services: the Label Studio ML backend (``eglpp label-studio-backend``).

HTTP in, library calls out (:mod:`eglpp.practitioner.live_loop`): no model or file logic here.
FastAPI and uvicorn are the optional extra ``eglpp[label-studio-backend]``.
"""
