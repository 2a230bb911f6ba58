"""Files in the first JSON layout (``learning-diagrams/1``), as the library wrote them before the ACSet layout.

The library no longer writes this layout, but reads it; the tests make such files here, from a
diagram, exactly as the old writer laid them out (keys, order, ``indent=2``).
"""

from __future__ import annotations

import json
from typing import Any

from learning_diagrams.io.binding import plan_of
from learning_diagrams.io.plan import FORMAT


def legacy_json(diagram, names=None, weights: dict[str, str] | None = None) -> dict[str, Any]:
    """The first layout's object for ``diagram``: ``weights`` is the entry to record (``None``: null)."""
    plan = plan_of(diagram, names)
    vid = {v.name: i for i, v in enumerate(plan.vertices, 1)}
    eid = {e.name: i for i, e in enumerate(plan.edges, 1)}
    return {
        "format": FORMAT,
        "V": [
            {"_id": vid[v.name], "name": v.name, "data": v.data, "loss": v.loss, "type": v.type} for v in plan.vertices
        ],
        "E": [
            {
                "_id": eid[e.name],
                "src": vid[e.src],
                "tgt": vid[e.tgt],
                "name": e.name,
                "fn": e.fn,
                "trainable": e.trainable,
                "training": e.training,
            }
            for e in plan.edges
        ],
        "R": [
            {
                "_id": i,
                "src": vid[r.first.source],
                "tgt": vid[r.first.target],
                "first": [eid[e] for e in r.first.edges],
                "second": [eid[e] for e in r.second.edges],
                "weight": r.weight,
            }
            for i, r in enumerate(plan.relations, 1)
        ],
        "options": {"max_length": plan.max_length, "max_paths": plan.max_paths},
        "weights": weights,
    }


def legacy_text(diagram, names=None, weights: dict[str, str] | None = None) -> str:
    return json.dumps(legacy_json(diagram, names, weights), indent=2, ensure_ascii=False) + "\n"
