"""The ingest pipeline: discover → id → version → skip? → process → validate → plan → commit.

Each product is its own transaction; a product that fails at any step is reported (product,
step, reason) and the others go on.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StacRepositoryError
from ..stac.planner import Planner
from ..stac.source import SourceNode, load_tree
from ..stac.validation import Checks, SchemaValidator

if TYPE_CHECKING:
    from . import Repository


@dataclass
class ProductResult:
    product: str
    status: str  # "added", "updated", "skipped", "failed"
    id: str | None = None
    version: str | None = None
    step: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


@dataclass
class IngestReport:
    results: list[ProductResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[ProductResult]:
        return [r for r in self.results if r.status == "failed"]

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": {s: self.count(s) for s in ("added", "updated", "skipped", "failed")},
            "products": [r.to_json() for r in self.results],
        }


def _step(name: str, result: ProductResult, fn: Callable[[], Any]) -> Any:
    """Run one step; a failure of any kind becomes the product's one-line reason."""
    result.step = name
    try:
        return fn()
    except StacRepositoryError as exc:
        raise _Failed(str(exc)) from exc
    except Exception as exc:  # processors are foreign code: any exception is a product failure
        raise _Failed(f"{type(exc).__name__}: {exc}") from exc


class _Failed(Exception):
    pass


def _discover(
    processor: Any, sources: Iterable[str | os.PathLike[str]], report: IngestReport
) -> Iterator[str]:
    for source in map(os.fspath, sources):
        absolute = source if "://" in source else str(Path(source).absolute())
        result = ProductResult(product=source, status="failed")
        try:
            products = iter(_step("discover", result, lambda a=absolute: processor.discover(a)))
            while True:
                product = _step("discover", result, lambda p=products: next(p, None))
                if product is None:
                    break
                yield str(product)
        except _Failed as exc:
            result.reason = str(exc)
            report.results.append(result)


def _temp_entries() -> set[str]:
    try:
        return set(os.listdir(tempfile.gettempdir()))
    except OSError:
        return set()


def _scratch_folder(output: Path, before: set[str]) -> Path | None:
    """The folder ``process`` created in the temp folder for its output, if it made one.

    Only a folder that did not exist before the call is ever removed: a processor's cache or
    the user's own data in /tmp is never touched.
    """
    try:
        tmp = Path(tempfile.gettempdir()).resolve()
    except OSError:  # no usable temp folder: the processor made nothing there either
        return None
    folder = output.resolve().parent
    while folder.parent != tmp:
        if folder == folder.parent or tmp not in folder.parents:
            return None
        folder = folder.parent
    return folder if folder.name not in before and folder.is_dir() else None


def ingest(
    repo: Repository,
    sources: Iterable[str | os.PathLike[str]],
    *,
    processor_name: str,
    processor: Any,
    parent: str | None,
    force: bool,
    on_result: Callable[[ProductResult], None] | None = None,
) -> IngestReport:
    report = IngestReport()
    validator = repo._schema_validator()
    with _fewer_collections():
        for product in _discover(processor, sources, report):
            result = _ingest_one(repo, processor_name, processor, validator, product, parent, force)
            report.results.append(result)
            if on_result is not None:
                on_result(result)
    return report


GC_THRESHOLD = 50_000
"""Objects allocated between two garbage collections during an ingest (Python's default: 700)."""


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect cyclic garbage less often while products are ingested, then as before.

    A bulk product allocates millions of short-lived objects, and a collection every 700 of
    them scans the loaded tree and the plan again and again: 3-4 % of a bulk ingest's time,
    all of it in the process that writes, and every page it touches is copied for the forked
    workers. Ingesting makes few reference cycles; those it makes wait a little longer.
    """
    threshold = gc.get_threshold()
    raised = (max(threshold[0], GC_THRESHOLD), *threshold[1:])
    gc.set_threshold(*raised)
    try:
        yield
    finally:
        if gc.get_threshold() == raised:  # unless someone else set it meanwhile
            gc.set_threshold(*threshold)


def _ingest_one(
    repo: Repository,
    processor_name: str,
    processor: Any,
    validator: SchemaValidator,
    product: str,
    parent: str | None,
    force: bool,
) -> ProductResult:
    result = ProductResult(product=product, status="failed")
    output: Path | None = None
    before: set[str] = set()
    try:
        result.id = str(_step("id", result, lambda: processor.id(product)))
        checks = Checks(validator, defer=True)
        loaded: SourceNode | None = None
        if callable(version_and_tree := getattr(processor, "version_and_tree", None)):
            # The built-in stac processor loads the product to hash it: validated on the way.
            version, loaded = _step("version", result, lambda: version_and_tree(product, checks))
        else:
            version = _step("version", result, lambda: processor.version(product))
        result.version = str(version)
        if not force and repo._stored_version(result.id, parent) == result.version:
            result.status, result.step = "skipped", None
            return result
        before = _temp_entries()
        output = Path(str(_step("process", result, lambda: processor.process(product))))
        if not output.is_file():
            raise _Failed(f"processor returned {str(output)!r}, which is not a file")
        assert output is not None
        source = output
        if loaded is not None and loaded.file == Path(os.path.realpath(source)):
            tree = loaded
            _step("validate", result, checks.raise_first)
        else:
            checks = Checks(validator)
            tree = _step("validate", result, lambda: load_tree(source, validate=checks, lazy_items=True))
        unchecked = checks.unchecked
        if unchecked:
            listed = ", ".join(f"{url} ({n})" for url, n in sorted(unchecked.items()))
            result.warnings.append(f"schemas not available offline, not validated: {listed}")
        if tree.id != result.id:
            raise _Failed(f"processor said id {result.id!r} but wrote a document with id {tree.id!r}")
        allowed = {output.parent}
        if "://" not in product:
            allowed.add(Path(os.path.realpath(Path(product.split("#")[0]).parent)))
        # Handed to the planner and dropped here, so that the tree is freed before the
        # transaction is written (a large product holds a node per item).
        todo = [tree]
        del tree, loaded

        def commit() -> str:
            with repo.backend.transaction(timeout=repo.lock_timeout) as tx:
                planner = Planner(
                    tx.snapshot,
                    allow_outside_assets=repo.allow_outside_assets,
                    asset_roots=allowed,
                    layout=repo.layout,
                    folder_writing=tx.folder_writing(),
                )
                try:
                    producer = f"{processor_name} {processor.__version__}"
                    planner.ingest(todo.pop(), parent=parent, version=result.version, processor=producer)
                    verb = "update" if planner.outcome.updated else "ingest"
                    message = f"{verb} {result.id} ({producer}, version {result.version})"
                    summary = {
                        "product": result.id,
                        "processor": processor_name,
                        "processor_version": processor.__version__,
                        "product_version": result.version,
                        "objects": planner.objects_written,
                    }
                    commit = tx.commit(planner.changeset(message, summary))
                finally:
                    planner.close()
                result.warnings.extend(planner.outcome.warnings)
                result.status = "updated" if planner.outcome.updated else "added"
                return commit.id if commit else ""

        result.commit = _step("store", result, commit) or None
        result.step = None
    except _Failed as exc:
        result.status = "failed"
        result.reason = str(exc)
    finally:
        scratch = _scratch_folder(output, before) if output is not None else None
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return result
