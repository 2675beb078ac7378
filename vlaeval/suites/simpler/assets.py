"""The SimplerEnv data pack: where it is, whether a file is intact, and a writable view of it.

The pack (``shared/assets/simpler``: ``data/``, ``descriptions/``, ``MANIFEST.tsv`` with a
sha256 per file, ``MISSING.tsv`` listing what upstream refers to but the pack lacks) is found
at, in order: the backend option ``assets``, ``$VLAEVAL_ASSETS``, ``<repo>/../shared/assets/simpler``,
``$VLAEVAL_HOME/assets/simpler``.

SAPIEN writes collision caches (``*.convex.stl``) beside the meshes it loads, so the backend
never loads from the pack itself: :meth:`AssetPack.view` mirrors the directories it needs as
symlink trees under ``$VLAEVAL_HOME/cache/simpler/<pack id>/`` and hashes each mirrored file
against the manifest on first use (results cached in ``verified.json`` by path, size and
mtime). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from vlaeval.harness.envs import vlaeval_home

PACK_MARKER = "MANIFEST.tsv"


class AssetError(RuntimeError):
    """The data pack is missing, incomplete or corrupted (one-line message)."""


class AssetMissing(AssetError):
    """A file the episode needs is not in the pack."""


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def candidate_roots(option: str | None = None) -> list[Path]:
    out = []
    for value in (option, os.environ.get("VLAEVAL_ASSETS")):
        if value:
            out.append(Path(value).expanduser())
    out.append(_repo_root().parent / "shared" / "assets" / "simpler")
    out.append(vlaeval_home() / "assets" / "simpler")
    return out


def find_root(option: str | None = None) -> Path:
    tried = candidate_roots(option)
    for root in tried:
        if (root / PACK_MARKER).is_file():
            return root.resolve()
    raise AssetError(
        "SimplerEnv data pack not found (looked for MANIFEST.tsv in "
        + ", ".join(str(p) for p in tried)
        + "); set VLAEVAL_ASSETS to the pack directory"
    )


def _read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]


class AssetPack:
    """One data pack plus its verified, writable mirror."""

    def __init__(self, root: Path, cache_dir: Path | None = None):
        self.root = Path(root)
        manifest = _read_tsv(self.root / PACK_MARKER)
        self.manifest: dict[str, dict[str, str]] = {row["path"]: row for row in manifest}
        missing_tsv = self.root / "MISSING.tsv"
        self.missing: dict[str, dict[str, str]] = (
            {row["path"]: row for row in _read_tsv(missing_tsv)} if missing_tsv.exists() else {}
        )
        pack_id = hashlib.sha256(
            (str(self.root) + "\n" + (self.root / PACK_MARKER).read_text(encoding="utf-8")).encode()
        ).hexdigest()[:12]
        self.mirror = Path(cache_dir or vlaeval_home() / "cache" / "simpler") / pack_id
        self._verified_file = self.mirror / "verified.json"
        self._verified: dict[str, list[Any]] | None = None
        self._lock = threading.Lock()
        self._mirrored: set[str] = set()

    # -- lookup ---------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"root": str(self.root), "mirror": str(self.mirror), "files": len(self.manifest),
                "missing_upstream": len(self.missing)}

    def has(self, rel: str) -> bool:
        return rel in self.manifest and (self.root / rel).is_file()

    def require(self, rel: str, what: str = "") -> Path:
        """Path of a pack file in the mirror (verified); a one-line AssetMissing if absent."""
        if not self.has(rel):
            raise AssetMissing(self._missing_message(rel, what))
        with self._lock:
            if rel not in self._mirrored:
                self._verify([rel])
                self._link(rel)
                self._mirrored.add(rel)
        return self.mirror / "files" / rel

    def _missing_message(self, rel: str, what: str) -> str:
        if rel in self.missing:
            why = "listed in MISSING.tsv (absent from the upstream snapshots)"
        else:
            why = "not in MANIFEST.tsv"
        label = f"{what} " if what else ""
        return (f"SimplerEnv asset {label}{rel!r} is not in the pack at {self.root} ({why}); "
                "set VLAEVAL_ASSETS to a pack that has it")

    # -- mirror ---------------------------------------------------------------------------
    def view(self, rel_dir: str) -> Path:
        """Mirror ``rel_dir`` (recursively) as symlinks under the cache; verify every file once."""
        rel_dir = rel_dir.strip("/")
        dest_root = self.mirror / "files"
        with self._lock:
            if rel_dir in self._mirrored:
                return dest_root / rel_dir
            prefix = rel_dir + "/"
            members = [p for p in self.manifest if p.startswith(prefix)]
            if not members:
                raise AssetMissing(self._missing_message(rel_dir + "/", "directory"))
            self._verify(members)
            for rel in members:
                self._link(rel)
            self._mirrored.add(rel_dir)
        return dest_root / rel_dir

    def _link(self, rel: str) -> None:
        link = self.mirror / "files" / rel
        target = self.root / rel
        if link.is_symlink() and os.readlink(link) == str(target):
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)

    # -- verification ---------------------------------------------------------------------
    def _load_verified(self) -> dict[str, list[Any]]:
        if self._verified is None:
            try:
                self._verified = json.loads(self._verified_file.read_text())
            except (OSError, ValueError):
                self._verified = {}
        return self._verified

    def _verify(self, rels: list[str]) -> None:
        verified = self._load_verified()
        changed = False
        for rel in rels:
            path = self.root / rel
            try:
                st = path.stat()
            except FileNotFoundError:
                raise AssetMissing(self._missing_message(rel, "")) from None
            want = self.manifest[rel]
            key = [st.st_size, st.st_mtime_ns, want["sha256"]]
            if verified.get(rel) == key:
                continue
            if str(st.st_size) != want.get("bytes", str(st.st_size)):
                raise AssetError(f"SimplerEnv asset {rel!r} has {st.st_size} bytes, MANIFEST.tsv says {want['bytes']}")
            digest = _sha256(path)
            if digest != want["sha256"]:
                raise AssetError(f"SimplerEnv asset {rel!r} fails its sha256 check (pack corrupted: {path})")
            verified[rel] = key
            changed = True
        if changed:
            self.mirror.mkdir(parents=True, exist_ok=True)
            tmp = self._verified_file.with_name(f".verified.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(verified, sort_keys=True))
            os.replace(tmp, self._verified_file)

    def verify_all(self) -> int:
        """Hash every manifest file (for a doctor/CI check); returns the count."""
        with self._lock:
            self._verify(sorted(self.manifest))
        return len(self.manifest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=4)
def open_pack(option: str | None = None) -> AssetPack:
    return AssetPack(find_root(option))


# -- pack layout (upstream relative paths) -----------------------------------------------------

def model_json_path(name: str, instruct_override: bool = False) -> str:
    if instruct_override:
        return f"data_instruct_overrides/custom/{name}"
    return f"data/custom/{name}"


def model_dir(model_id: str) -> str:
    return f"data/custom/models/{model_id}"


def stage_path(scene_name: str) -> str:
    return f"data/hab2_bench_assets/stages/{scene_name}.glb"


def overlay_path(name: str) -> str:
    return f"data/real_inpainting/{name}"


def cabinet_urdf(station_name: str) -> str:
    return f"data/custom/{station_name}.urdf"
