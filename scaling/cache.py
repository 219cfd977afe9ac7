"""A reference embedding cache's identity and its completion marker: what the planner schedules, the cache job
builds (`scaling.reference.build_cache`) and status checks. No torch: the planner and status import it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from scaling.spec import DataSpec, ReferenceSpec


class CacheSpec(BaseModel):
    """One reference embedding cache: a reference's embeddings of one data pool."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    reference: ReferenceSpec
    data: DataSpec

    @property
    def task_id(self) -> str:
        blob = self.model_dump_json()
        return "cache-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_marker(out: Path, task_id: str) -> Path:
    """Written by a cache job when its cache is complete: lets a resubmission skip it."""
    return Path(out) / "cache" / f"{task_id}.json"
