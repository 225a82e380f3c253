"""The landing sensor's cursor: only what is in flight, so it stays small however long the
landing zone's history grows.

The manifest (bronze's ledger, in the warehouse) knows every file ingested. The cursor adds
what the manifest cannot know yet: files a tick requested a run for that no run has ingested
yet (each with the ETag requested and the run key), and files landed again with the same
content (so a tick does not read them again to find that out). An entry leaves once the
manifest has caught up with it.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field


@dataclass
class Cursor:
    requested: dict[str, list] = field(default_factory=dict)  # path -> [etag, run_key, attempt]
    relanded: dict[str, str] = field(default_factory=dict)  # path -> ETag with the ingested content

    def encode(self) -> str:
        raw = json.dumps({"v": 2, "requested": self.requested, "relanded": self.relanded},
                         sort_keys=True, separators=(",", ":")).encode()
        return "z2:" + base64.b64encode(zlib.compress(raw, 9)).decode()

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text or not text.startswith("z2:"):
            return cls()  # none yet, or of an older sensor: the manifest knows what is ingested
        state = json.loads(zlib.decompress(base64.b64decode(text[3:])))
        return cls(requested=state.get("requested", {}), relanded=state.get("relanded", {}))

    def forget_ingested(self, ingested: dict[str, str]) -> None:
        """Drop entries the manifest (path -> ETag) has caught up with."""
        self.requested = {p: e for p, e in self.requested.items() if ingested.get(p) != e[0]}
        self.relanded = {p: e for p, e in self.relanded.items() if ingested.get(p) != e}
