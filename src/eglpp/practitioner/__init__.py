"""The practitioner's workflow: ``eglpp select`` (choose images to annotate) and ``eglpp import``.

Modules: :mod:`~eglpp.practitioner.coco` (COCO keypoints read/write with validation),
:mod:`~eglpp.practitioner.labelled` (labelled set in any format), :mod:`~eglpp.practitioner.pool`
(streamed pool from a folder or a list), :mod:`~eglpp.practitioner.select` (chunked, resumable
scoring), :mod:`~eglpp.practitioner.outputs` (CSV, COCO, contact sheet),
:mod:`~eglpp.practitioner.chunks` (the chunk files), :mod:`~eglpp.practitioner.settings`
(checkpoint, flag and output-folder settings), :mod:`~eglpp.practitioner.merge` (``eglpp
import``), :mod:`~eglpp.cli.select`.
"""
