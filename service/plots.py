"""Plots off the request path: worker processes draw a fit's PNGs into a cache folder on disk.

A fit's plots live in ``<plot_dir>/<fit_id>/`` (``loss_vs_lr.png``, ``lr_vs_width.png``, ``loss_vs_width.png``,
or ``unavailable.txt`` saying why the fit has nothing to draw, and ``.format`` naming the drawing code: a folder
drawn by another version is drawn again). A fit of many groups has several pages of each
plot (fitting.plots.PAGE groups to a page): page k > 1 is ``NAME_k.png``, served as ``NAME.png?page=k``; one
render draws every page, and the cache keeps each page in its own file. A worker draws them in a temporary folder and
renames it into place, so a fit's folder is there whole or not at all, and a folder that is there is a finished
render. The database is never written: a plot GET only reads it.

Why processes, not threads: pyplot keeps global state, so threads would draw one at a time behind a lock, and
would share the GIL with the event loop. One render per fit is in flight at a time (requests for it share its
future); no lock is held while anything is drawn, and a request waits on its future without blocking the loop.
A worker decodes the stored table under the same row and cell caps as an upload (from the parquet footer, before
decoding), so a fit stored before the caps existed cannot blow the server's memory when plotted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from abcscale.service.config import Settings, StartupRefused

PLOT_NAMES = ("loss_vs_lr", "lr_vs_width", "loss_vs_width")
UNAVAILABLE = "unavailable.txt"
#: groups per PNG page: fitting.plots.PAGE, repeated (a test checks they agree) so that reading a fit never
#: loads the fitter into the server
PAGE = 16
# a fit id names a folder: nothing but a plain name ever reaches the file system
_FOLDER_NAME = re.compile(r"[0-9A-Za-z_-]{1,64}")
#: a render's temporary folder (``tempfile.mkdtemp(prefix=".<fit id>-")``), renamed into place when it ends
_RENDER_TMP = re.compile(r"\.[0-9A-Za-z_-]{1,64}-[0-9a-z_]{8}")
#: a render's temporary folder older than this is a killed process's, removed by a sweep: renders take seconds
#: (the server waits ABCSCALE_PLOT_WAIT_S for one), so a live one is never this old
STALE_RENDER_S = 3600.0
#: fit ids asked of the database at once by a sweep (SQLite binds at most 32766 parameters a statement)
SWEEP_CHUNK = 500
#: the least time between two sweeps started by cache misses (one sweep runs at start-up besides)
SWEEP_EVERY_S = 3600.0
#: the file in a plot cache naming the database whose fits it holds: only that database's servers sweep it
OWNER = ".database"
#: the file in a fit's plot folder naming what drew it (:func:`plot_format`): a folder another drawing code made is
#: drawn again, not served (an upgrade kept serving the old version's PNGs and its failures for good: a review)
FORMAT = ".format"

log = logging.getLogger("abcscale.service")


def plot_pages(n_groups: int) -> int:
    """How many pages each plot of a fit with ``n_groups`` groups has (one at least: an empty fit draws one)."""
    return max(1, math.ceil(n_groups / PAGE))


@functools.cache
def plot_format() -> str:
    """What a fit's cached plots were drawn by: a hash of the drawing code (fitting/plots.py, beside this package in
    the source tree and in an install alike) and matplotlib's version. Read from the files, not imported: reading a
    fit never loads the fitter into the server."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    try:
        digest.update((Path(__file__).resolve().parent.parent / "fitting" / "plots.py").read_bytes())
    except OSError:  # an unusual layout: the package's version stands for its code
        from abcscale import __version__

        digest.update(__version__.encode())
    try:
        digest.update(version("matplotlib").encode())
    except PackageNotFoundError:
        pass
    return digest.hexdigest()[:16]


def _drawn_here(folder: Path, fmt: str | None = None) -> bool:
    """Whether a fit's plot folder was drawn by this code (:data:`FORMAT`, ``fmt`` or this process's
    :func:`plot_format`); a folder without the file predates it."""
    try:
        return (folder / FORMAT).read_text() == (fmt or plot_format())
    except FileNotFoundError:
        return False


def page_file(name: str, page: int) -> str:
    """The file name (without .png) of a plot's page, as fitting.plots.write_plots names it."""
    return name if page == 1 else f"{name}_{page}"


def plot_url(fit_id: str, name: str, page: int = 1) -> str:
    return f"/v1/fits/{fit_id}/plots/{name}.png" + ("" if page == 1 else f"?page={page}")


def plot_urls(fit_id: str, n_groups: int) -> dict[str, str]:
    """Every page of every plot: ``NAME`` (page 1), ``NAME_2``, ... -> its URL path."""
    return {page_file(name, k): plot_url(fit_id, name, k) for name in PLOT_NAMES
            for k in range(1, plot_pages(n_groups) + 1)}


def render(fit_json: str, rows: bytes, folder: str, max_rows: int, max_cells: int, fmt: str | None = None
           ) -> str | None:
    """In a worker process: draw a fit's plots into ``folder``, made whole at once. Returns None when the folder
    is in place (with the plots, or with why there are none), or why nothing was cached (a table over a cap:
    a raised cap may plot it later). ``fmt``: the server's :func:`plot_format`, which the folder is marked with (a
    worker started after the drawing code changed on disk computes another, and the server took its folder for
    another version's: a 404 for a fit that exists, a review)."""
    fmt = fmt or plot_format()
    from abcscale.fitting import read_table
    from abcscale.fitting.reading import TableTooLarge
    from abcscale.schemas.fit import FitResult
    from abcscale.usecases import plot_fit

    target = Path(folder)
    try:
        df = read_table(rows, "parquet", max_rows=max_rows, max_cells=max_cells)
    except TableTooLarge as exc:
        return f"{exc}; the cap is set by ABCSCALE_{exc.cap.upper()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        try:
            plot_fit(FitResult.model_validate_json(fit_json), df, tmp)
        except OSError:
            raise  # a full disk, say: nothing to cache, the next request tries again
        except Exception as exc:  # noqa: BLE001 - whatever stops the drawing, this fit has no plots: say why
            for png in tmp.iterdir():
                png.unlink()
            (tmp / UNAVAILABLE).write_text(str(exc) or type(exc).__name__)
        (tmp / FORMAT).write_text(fmt)
        try:
            os.rename(tmp, target)
        except OSError:
            # a render of the same fit (another server process) finished first: same plots; or the folder is an
            # older drawing code's (an upgrade), which this render replaces
            if target.is_dir() and not _drawn_here(target, fmt):
                shutil.rmtree(target, ignore_errors=True)
                with contextlib.suppress(OSError):
                    os.rename(tmp, target)
        if deleted_marker(target.parent, target.name).exists():  # deleted while drawn (by any server process)
            shutil.rmtree(target, ignore_errors=True)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def deleted_marker(root: Path, fit_id: str) -> Path:
    """The empty file that says a fit was deleted: a render that ends after the delete removes what it drew,
    and no request serves or starts one, whichever server process it runs in (one per deleted fit, a few bytes)."""
    return root / ".deleted" / fit_id


def check_plot_dir(settings: Settings) -> None:
    """Refuse to start on a plot cache folder that cannot be one (a file, an unwritable folder): every plot
    request was a 500. Nothing is made here; the first render makes the folder."""
    root = settings.resolved_plot_dir
    setting = "ABCSCALE_PLOT_DIR" if settings.plot_dir is not None else "ABCSCALE_DATA_DIR"
    where = root if settings.plot_dir is not None else f"{root} (the data folder's plots)"
    try:
        existing = next(p for p in (root, *root.absolute().parents) if p.exists() or p == p.parent)
    except OSError as exc:
        raise StartupRefused(f"the plot cache {where} cannot be reached ({exc.strerror or exc})", setting) from None
    if not existing.is_dir():
        raise StartupRefused(f"{existing} is a file, not a folder: the plot cache {where} cannot be made", setting)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StartupRefused(f"the plot cache {where} is not writable ({existing}: permission denied)", setting)


def worker_init() -> None:
    """A plot worker's initializer: Ctrl-C is the server's (:func:`ignore_sigint`), and a worker whose server
    died (kill -9, the OOM killer) exits too: a dead server's workers (a few hundred MB each) ran forever."""
    ignore_sigint()
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()


def exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Poll until this process's parent is no longer ``parent`` (it died: the process was re-parented), then
    exit at once (a render in flight has nobody to answer)."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(0)


def ignore_sigint() -> None:
    """A worker's initializer: Ctrl-C is the server's to handle. A terminal sends SIGINT to the whole foreground
    process group, workers included; a worker that took it would die printing ``Process SpawnProcess-1:
    Traceback ... KeyboardInterrupt`` while the server shuts the pool down (``close``) anyway."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class RenderFailed(Exception):
    """A worker died (killed for memory, say) or the cache cannot be written or read: nothing cached, retry
    later."""


class PlotRenderer:
    """The app's plot cache and its worker pool (started on the first render, stopped with the app)."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.resolved_plot_dir
        self.wait_s = settings.plot_wait_s
        self._workers = settings.plot_workers
        self._caps = (settings.max_rows, settings.max_cells)
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[str, Future[str | None]] = {}
        self._lock = threading.Lock()  # guards the fields above; never held while anything renders
        self._stored: Callable[[list[str]], set[str]] | None = None  # which of these fit ids the database holds
        self._database = ""  # the database this server serves, as the cache's OWNER file names it
        self._owns: bool | None = None  # whether the cache is that database's (None: not known yet)
        self._swept_at = -math.inf  # time.monotonic() of the last sweep started
        self._sweeping = threading.Lock()  # held while a sweep runs: one at a time

    def folder(self, fit_id: str) -> Path:
        if not _FOLDER_NAME.fullmatch(fit_id):
            raise ValueError(f"not a fit id: {fit_id!r}")
        return self.root / fit_id

    def cached(self, fit_id: str, name: str, page: int = 1) -> bytes | str | None:
        """The PNG of the plot's ``page``, or why this fit has none (a str), or None when it is not rendered yet
        (blocking: disk reads)."""
        folder = self.folder(fit_id)
        try:
            if deleted_marker(self.root, fit_id).exists():  # deleted while its render ran: nothing to serve
                return None
            if folder.is_dir() and not _drawn_here(folder):  # drawn by another version's code: drawn again
                return None
            try:
                return (folder / f"{page_file(name, page)}.png").read_bytes()
            except FileNotFoundError:
                pass
            try:
                return (folder / UNAVAILABLE).read_text()
            except FileNotFoundError:
                return f"{name} page {page} was not drawn" if folder.is_dir() else None
        except OSError as exc:  # the cache folder made a file, or unreadable, since the start: a 503, not a 500
            raise RenderFailed(f"the plot cache {self.root} cannot be read: {exc.strerror or exc}") from None

    def pending(self, fit_id: str) -> Future[str | None] | None:
        with self._lock:
            return self._pending.get(fit_id)

    def submit(self, fit_id: str, fit_json: str, rows: bytes) -> Future[str | None]:
        """The render of this fit: the one in flight, or a new one in a worker (RenderFailed if none can start).

        Workers are spawned, so a script that creates the app must guard its entry point with
        ``if __name__ == "__main__":``, as for uvicorn's own ``workers=``: a spawned worker imports the main module."""
        try:
            gone_already = deleted_marker(self.root, fit_id).exists()
        except OSError as exc:
            raise RenderFailed(f"the plot cache {self.root} cannot be read: {exc.strerror or exc}") from None
        if gone_already:  # read just before its delete: nothing to draw (a 404)
            gone: Future[str | None] = Future()
            gone.set_result(None)
            return gone
        with self._lock:
            future = self._pending.get(fit_id)
            if future is None:
                job = functools.partial(render, fit_json, rows, str(self.folder(fit_id)), *self._caps, plot_format())
                try:
                    try:
                        future = self._started().submit(job)
                    except BrokenProcessPool:  # a worker was killed (for memory, say): the pool is dead, start anew
                        if self._pool is not None:
                            self._pool.shutdown(wait=False, cancel_futures=True)
                        self._pool = None
                        future = self._started().submit(job)
                except Exception as exc:  # noqa: BLE001 - e.g. no process can be started: a 503, never a 500
                    raise RenderFailed(f"cannot start a plot worker ({type(exc).__name__}: {exc})") from None
                self._pending[fit_id] = future
        future.add_done_callback(lambda done: self._forget(fit_id, done))  # outside the lock: may run at once
        return future

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: a fork of a threaded server can copy a lock in its held state
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=worker_init, max_tasks_per_child=100)
        return self._pool

    def _forget(self, fit_id: str, done: Future[str | None]) -> None:
        with self._lock:
            if self._pending.get(fit_id) is done:
                del self._pending[fit_id]

    async def wait(self, future: Future[str | None]) -> bool:
        """Whether the render finished within ``plot_wait_s`` (awaited: the event loop serves others meanwhile).
        Leaving early never cancels the render: other requests may share it."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not finished.done():  # wait_for cancels it on a timeout
                finished.set_result(None)

        def wake(_: object) -> None:
            try:
                loop.call_soon_threadsafe(done)
            except RuntimeError:  # the loop closed first (server shutting down)
                pass

        future.add_done_callback(wake)
        try:
            await asyncio.wait_for(finished, self.wait_s)
        except TimeoutError:
            return False
        return True

    def outcome(self, future: Future[str | None]) -> str | None:
        """A finished render's uncached problem (None: look in the cache); RenderFailed when a worker died."""
        try:
            return future.result()
        except (Exception, CancelledError) as exc:  # a dead worker, an unwritable cache folder: never a 500
            raise RenderFailed(f"{type(exc).__name__}: {exc}") from None

    def revive(self, fit_id: str) -> None:
        """Forget a fit's delete marker: the fit is stored again (restored from a backup), and its plots may be
        drawn (they were a 404 for good: a review). Only for a fit the database holds after the marker was seen:
        a delete writes its marker after the row is gone."""
        with contextlib.suppress(OSError):
            deleted_marker(self.root, fit_id).unlink(missing_ok=True)

    def marked_deleted(self, fit_id: str) -> bool:
        try:
            return deleted_marker(self.root, fit_id).exists()
        except OSError:
            return False

    def discard(self, fit_id: str) -> None:
        """Remove a deleted fit's plots (blocking) and mark it deleted (:func:`deleted_marker`): a render still in
        flight, in this server process or another, removes what it drew when it ends."""
        folder = self.folder(fit_id)
        marker = deleted_marker(self.root, fit_id)
        try:  # before the folder goes: a render renames its folder into place, then looks for the marker
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass  # an unwritable cache: the fit is deleted all the same; a render in flight may leave its plots
        shutil.rmtree(folder, ignore_errors=True)

    def forget(self, fit_id: str) -> None:
        """Remove the cached plots of a fit the database was just found not to hold (a 404): deleted by another
        server that shares the database but not this disk, whose delete removed only its own cache. A fit id is
        never used again (a restored backup's fit is drawn again, same plots), so no live fit's plots go."""
        try:
            folder = self.folder(fit_id)
        except ValueError:
            return  # not an id a folder could have
        if folder.is_dir() and self._owned():
            shutil.rmtree(folder, ignore_errors=True)

    def watch(self, stored: Callable[[list[str]], set[str]], database: str) -> None:
        """Sweep the cache now, and again at most every :data:`SWEEP_EVERY_S` on a cache miss
        (:meth:`sweep_soon`), with ``stored`` saying which of some fit ids ``database`` holds."""
        self._stored, self._database = stored, database
        self.sweep()

    def _owned(self) -> bool:
        """Whether the cache holds the watched database's plots (its :data:`OWNER` file names it; a cache without
        one is claimed). One folder shared by servers of two databases (``abcscale serve --db ...`` in one working
        folder share ./abcscale-data/plots) is swept only by the servers of the database it names, whose sweeps remove
        the other database's plots (drawn again on their next request): one plot folder per database."""
        if self._owns is not None or self._stored is None:
            return bool(self._owns)
        owner = self.root / OWNER
        try:
            with open(owner, "x", encoding="utf-8") as out:  # O_EXCL: two servers starting at once claim it once
                out.write(self._database)
        except FileExistsError:
            pass
        except OSError:
            return False  # no cache folder yet (nothing to sweep), or unwritable: asked again next time
        try:
            self._owns = owner.read_text(encoding="utf-8") == self._database
        except OSError:
            return False
        if not self._owns:
            log.info("plot cache %s is another database's too (%s names it): not swept", self.root, owner)
        return self._owns

    def sweep_soon(self) -> None:
        """A sweep in a background thread when the last one is :data:`SWEEP_EVERY_S` old: a long-running server
        would otherwise keep the plots of fits other servers deleted until its restart (or a 404 for each)."""
        if not self._owns or time.monotonic() - self._swept_at < SWEEP_EVERY_S:
            return
        threading.Thread(target=self.sweep, daemon=True, name="plot-cache-sweep").start()

    def sweep(self) -> int:
        """Remove the cached folders of fits the database no longer holds; how many went. The folders are listed
        before the database is asked: a folder is made only by a render of a fit the database held, and a fit id is
        never used again, so a listed folder whose fit is not there now belongs to a deleted fit, whatever another
        server does meanwhile (a fit made since has no folder in the list)."""
        stored = self._stored
        if stored is None or not self._owned() or not self._sweeping.acquire(blocking=False):
            return 0
        try:
            self._swept_at = time.monotonic()
            try:
                names = sorted(p.name for p in self.root.iterdir() if _FOLDER_NAME.fullmatch(p.name) and p.is_dir())
            except OSError:
                return 0  # no cache yet (or unreadable: the plot requests say so)
            removed = 0
            for start in range(0, len(names), SWEEP_CHUNK):
                chunk = names[start:start + SWEEP_CHUNK]
                try:
                    held = stored(chunk)
                except Exception as exc:  # noqa: BLE001 - a database that refuses now: the next sweep tries again
                    log.warning("plot cache %s not swept: the database could not say which fits it holds (%s)",
                                self.root, " ".join(str(exc).split())[:200])
                    break
                for fit_id in chunk:
                    if fit_id not in held:
                        shutil.rmtree(self.root / fit_id, ignore_errors=True)
                        removed += 1
            if removed:
                log.info("plot cache %s: removed the plots of %d fit(s) the database no longer holds", self.root,
                         removed)
            self._remove_stale_renders()
            return removed
        finally:
            self._sweeping.release()

    def _remove_stale_renders(self) -> None:
        """Remove the temporary folders of renders a killed process left (``kill -9`` mid-render): kept for good,
        one a crash (a review, session 83)."""
        now = time.time()
        try:
            stale = [p for p in self.root.iterdir() if _RENDER_TMP.fullmatch(p.name) and p.is_dir()
                     and now - p.stat().st_mtime > STALE_RENDER_S]
        except OSError:
            return
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        if stale:
            log.info("plot cache %s: removed %d render folder(s) a stopped process left", self.root, len(stale))

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
