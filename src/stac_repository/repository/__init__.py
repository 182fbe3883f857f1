"""The Repository: the verbs of the library (init, ingest, prune, history, rollback, export,
backup, config), each a thin method over the STAC planner and a storage backend.

The library never prompts and never prints: it returns result objects and raises errors
from :mod:`stac_repository.errors`; the CLI renders them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import backends
from ..backends.base import Backend, ChangeSet, Commit
from ..backends.fsutil import atomic_write
from ..errors import BackendError, Conflict, InvalidStac, NotFound, StacRepositoryError, UsageError
from ..stac.document import StacType, dumps, parse_json, read_json_file
from ..stac.layout import ROOT_PATH
from ..stac.partition import Layout
from ..stac.planner import SUMMARY_IDS, Planner, init_changeset, root_catalog
from ..stac.validation import SchemaValidator, check_structure
from . import config as cfg
from .ingest import IngestReport, ProductResult
from .remote import SyncResult


class Repository:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.root = backend.root
        self._config: dict[str, Any] | None = None
        self._validator: tuple[Path | None, SchemaValidator] | None = None

    # -- opening and creating -------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, backend: str | None = None) -> Repository:
        root = Path(path).absolute()
        if not root.is_dir():
            raise NotFound(f"no repository at {root} (run 'stac-repository init' first)")
        if backend is not None:
            backend_cls = backends.backend_class(backend)
            if not backend_cls.detect(root):
                raise NotFound(f"{root} is not a stac-repository with the {backend!r} backend")
        else:
            detected = backends.detect(root)
            if detected is None:
                raise NotFound(f"{root} is not a stac-repository (run 'stac-repository init' first)")
            backend_cls = detected
        instance = backend_cls(root)
        repo = cls(instance)
        fsync = cfg.get_value(repo.config, "fsync")
        if hasattr(instance, "fsync"):
            instance.fsync = bool(fsync)
        return repo

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str = "file",
        root_catalog_file: str | os.PathLike[str] | None = None,
        id: str = "root",  # noqa: A002 - mirrors the STAC field
        title: str | None = None,
        description: str | None = None,
        license: str | None = None,  # noqa: A002
        options: dict[str, Any] | None = None,
    ) -> Repository:
        root = Path(path).absolute()
        backend_cls = backends.backend_class(backend)
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root} exists and is not a folder")
        if backends.detect(root) is not None if root.is_dir() else False:
            raise Conflict(f"{root} is already a stac-repository")
        if root.is_dir() and any(root.iterdir()):
            raise UsageError(f"{root} is not empty: init needs a new or empty folder")
        doc = new_root_document(
            root_catalog_file, id=id, title=title, description=description, license=license
        )
        config = cfg.defaults(backend)
        root.mkdir(parents=True, exist_ok=True)
        created = backend_cls.create(root, init_changeset(doc, config), options=options or {})
        return cls(created)

    # -- configuration --------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """The versioned configuration, with this copy's local settings laid over it."""
        if self._config is None:
            with self.backend.snapshot() as snap:
                try:
                    self._config = parse_json(snap.read(cfg.CONFIG_PATH), file=cfg.CONFIG_PATH)
                except NotFound:
                    self._config = cfg.defaults(self.backend.name)
            local = self._local_config()
            for key in cfg.LOCAL_KEYS:
                value = cfg.get_value(local, key)
                if value is not None:
                    cfg.set_value(self._config, key, value)
        return self._config

    def _local_config_path(self) -> Path:
        return self.backend.local_dir / cfg.LOCAL_FILE

    def _local_config(self) -> dict[str, Any]:
        try:
            data = self._local_config_path().read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise BackendError(f"cannot read {self._local_config_path()}: {exc.strerror}") from None
        return dict(parse_json(data, file=str(self._local_config_path())))

    @property
    def lock_timeout(self) -> float:
        env = os.environ.get("STAC_REPOSITORY_LOCK_TIMEOUT")
        if env:
            return cfg.parse("lock.timeout", env)
        return float(cfg.get_value(self.config, "lock.timeout"))

    @property
    def schema_dir(self) -> Path | None:
        value = cfg.get_value(self.config, "schema_dir")
        return Path(value) if value else None

    def _schema_validator(self) -> SchemaValidator:
        """The validator of ``schema_dir``, kept between ingests: compiling the core schemas
        costs a few milliseconds, a sizeable part of a single-item ingest. A schema file added
        to ``schema_dir`` meanwhile is seen by the next ``Repository.open``."""
        schema_dir = self.schema_dir
        if self._validator is None or self._validator[0] != schema_dir:
            self._validator = (schema_dir, SchemaValidator(schema_dir))
        return self._validator[1]

    @property
    def allow_outside_assets(self) -> bool:
        return bool(cfg.get_value(self.config, "assets.allow_outside"))

    @property
    def layout(self) -> Layout:
        return Layout(
            max_items=int(cfg.get_value(self.config, "layout.max_items")),
            scheme=str(cfg.get_value(self.config, "layout.partition")),
        )

    def get_config(self, key: str | None = None) -> Any:
        if key is None:
            return cfg.flatten(self.config)
        return cfg.get_value(self.config, key)

    def set_config(self, key: str, raw_value: str) -> Commit | None:
        """Change a setting: a transaction of its own, or (local keys) this copy's settings file."""
        value = cfg.parse(key, raw_value)
        if key in cfg.LOCAL_KEYS:
            with self.backend.transaction(timeout=self.lock_timeout):
                local = self._local_config()
                cfg.set_value(local, key, value)
                atomic_write(self._local_config_path(), dumps(local), fsync=True)
            self._config = None
            return None
        with self.backend.transaction(timeout=self.lock_timeout) as tx:
            current = parse_json(tx.snapshot.read(cfg.CONFIG_PATH), file=cfg.CONFIG_PATH)
            cfg.set_value(current, key, value)
            changes = ChangeSet(
                message=f"config {key} = {value!r}",
                writes={cfg.CONFIG_PATH: dumps(current)},
                summary={"config": {key: value}},
            )
            commit = tx.commit(changes)
        self._config = None
        return commit

    # -- reading --------------------------------------------------------------------------

    def root_document(self, ref: str | None = None) -> dict[str, Any]:
        with self.backend.snapshot(ref) as snap:
            return parse_json(snap.read(ROOT_PATH), file=ROOT_PATH)

    def show(self, selector: str, *, ref: str | None = None) -> dict[str, Any]:
        """The stored document of an object, by id or path."""
        with self.backend.snapshot(ref) as snap:
            planner = Planner(snap)
            entry = planner.select(selector)
            return {
                "path": entry.path,
                "parent": entry.parent,
                "version": entry.version,
                "processor": entry.processor,
                "document": planner.doc(entry.path),
            }

    def _stored_version(self, ident: str, parent: str | None) -> str | None:
        """The version of the product an ingest of ``ident`` would replace (None: none or unsure)."""
        with self.backend.snapshot() as snap:
            try:
                _, old = Planner(snap).existing(ident, parent)
            except StacRepositoryError:
                return None  # the ingest itself reports why
            return old.version if old is not None else None

    # -- writing --------------------------------------------------------------------------

    def ingest(
        self,
        sources: Iterable[str | os.PathLike[str]],
        *,
        processor: str = "stac",
        parent: str | None = None,
        force: bool = False,
        on_result: Callable[[ProductResult], None] | None = None,
    ) -> IngestReport:
        from ..processors import registry
        from .ingest import ingest

        loaded = registry.load(processor)
        return ingest(
            self,
            sources,
            processor_name=processor,
            processor=loaded,
            parent=parent,
            force=force,
            on_result=on_result,
        )

    def prune(
        self, selectors: Iterable[str], *, extract: str | os.PathLike[str] | None = None
    ) -> Commit | None:
        selectors = list(selectors)
        if not selectors:
            raise UsageError("name at least one id to prune")
        with self.backend.transaction(timeout=self.lock_timeout) as tx:
            planner = Planner(tx.snapshot, layout=self.layout)
            entries = [planner.select(s) for s in selectors]
            if extract is not None:
                from .export import extract_subtrees

                extract_subtrees(tx.snapshot, planner, entries, Path(extract))
            pruned: list[str] = []
            for entry in entries:
                folder = entry.path.rsplit("/", 1)[0] + "/"
                if any(entry.path.startswith(done) for done in pruned):
                    continue  # inside an object pruned just before
                planner.prune(entry.path)
                pruned.append(folder)
            message = f"prune {', '.join(planner.outcome.removed)}"
            return tx.commit(planner.changeset(message, {"pruned": planner.outcome.removed}))

    # -- history --------------------------------------------------------------------------

    def history(self, ref: str | None = None) -> Iterator[Commit]:
        return self.backend.log(ref)

    def rollback(self, ref: str) -> Commit | None:
        """A new transaction restoring the catalog as it was at ``ref``; history keeps everything."""
        target = self.backend.resolve(ref)
        summary = changed_ids(self.backend, None, target)
        return self.backend.restore(
            target, timeout=self.lock_timeout, message=f"rollback to {ref} ({target[:10]})", summary=summary
        )

    # -- copies ---------------------------------------------------------------------------

    def export(
        self, destination: str | os.PathLike[str], *, ref: str | None = None, flatten: bool = False
    ) -> int:
        """Write the catalog (as of ``ref``) as a self-contained static catalog; returns files
        written. ``flatten``: without the layout's partition catalogs."""
        from .export import export

        return export(self.backend, Path(destination), ref=ref, flatten=flatten)

    def backup(self, destination: str | os.PathLike[str], *, ref: str | None = None) -> int:
        from .export import backup

        return backup(self.backend, Path(destination), ref=ref)

    @classmethod
    def restore_backup(
        cls,
        source: str | os.PathLike[str],
        path: str | os.PathLike[str],
        *,
        options: dict[str, Any] | None = None,
    ) -> Repository:
        """A new repository at ``path`` from a backup; ``options`` as for :meth:`init`."""
        from .export import restore_backup

        return cls(restore_backup(Path(source), Path(path).absolute(), options))

    # -- remotes (git backend) ------------------------------------------------------------

    def push(self, *, url: str | None = None) -> SyncResult:
        """Fast-forward the remote (``url``, else config ``remote.url``) to this branch."""
        from .remote import push

        return push(self, url=url)

    def pull(self, *, url: str | None = None) -> SyncResult:
        """Fast-forward this branch and working tree to the remote's."""
        from .remote import pull

        result = pull(self, url=url)
        self._config = None  # the pulled commits may have changed it
        return result


def changed_ids(backend: Backend, old_ref: str | None, new_ref: str | None) -> dict[str, list[str]]:
    """Ids added, updated and removed going from one state to another, read from the id index.

    Only the index shards whose bytes differ are parsed.
    """
    from ..stac.index import INDEX_DIR

    with backend.snapshot(old_ref) as old, backend.snapshot(new_ref) as new:
        shards = set(old.walk(INDEX_DIR)) | set(new.walk(INDEX_DIR))
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for shard in shards:
            a = old.read(shard) if old.exists(shard) else b"{}"
            b = new.read(shard) if new.exists(shard) else b"{}"
            if a != b:
                before.update(parse_json(a, file=shard))
                after.update(parse_json(b, file=shard))
    changes = {
        "added": sorted(i for i in after if i not in before),
        "updated": sorted(i for i in after if i in before and after[i] != before[i]),
        "removed": sorted(i for i in before if i not in after),
    }
    return {
        **{key: ids[:SUMMARY_IDS] for key, ids in changes.items()},
        "counts": {key: len(ids) for key, ids in changes.items()},
    }


def new_root_document(
    root_catalog_file: str | os.PathLike[str] | None,
    *,
    id: str,  # noqa: A002
    title: str | None,
    description: str | None,
    license: str | None,  # noqa: A002
) -> dict[str, Any]:
    """The root catalog of a new repository: from a file, or from the given fields."""
    if root_catalog_file is not None:
        file = Path(root_catalog_file)
        doc = read_json_file(file)
        kind = check_structure(doc, file=str(file))
        if kind is not StacType.CATALOG:
            raise InvalidStac(f"the root must be a Catalog, not a {kind}", file=str(file))
        SchemaValidator().validate(doc, kind, file=str(file))
        doc = dict(doc)
        doc["links"] = [
            link
            for link in doc.get("links", [])
            if link.get("rel") not in ("self", "root", "parent", "child", "item")
        ]
        doc["links"].insert(0, {"rel": "root", "href": "./catalog.json", "type": "application/json"})
        return doc
    doc = root_catalog(id, title, description or f"Catalog {id}", license)
    check_structure(doc, file="root catalog")
    return doc


__all__ = ["IngestReport", "ProductResult", "Repository"]
