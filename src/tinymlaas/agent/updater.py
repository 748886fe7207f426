"""Over-the-air model updates: Object 9's state machine carried from Package URI to a running model.

Writing a ``coap://`` or ``coaps://`` Package URI starts DOWNLOAD_STARTED and the package download
(``tinymlaas.agent.download``); then DOWNLOADED; the signature and every file are checked against the
provisioned public key (``verify_package``), then the board the package was built for (54, unsupported
package type, for another board) and its sequence (53, it fails verification, when it is no newer than
the newest this device confirmed: ``agent.sequences``); a rejection goes back to INITIAL with its Update
Result and the reason as Status Reason; DELIVERED; and the agent installs right away, into the
inactive A/B slot with a self-test (``Installer``): INSTALLED with result 2, or DELIVERED with result
58 while the previous model keeps running. Executing Install on a DELIVERED package installs it again
(after a failure, say); on an INSTALLED one it changes nothing. Uninstall goes back to the model that
ran before the last update, after its self-test passes again; the state stays INSTALLED, now with that
model's name and version (a campaign rollback). Update state and download progress survive restarts,
and a restarted agent carries an unfinished update on from where it stood. The states are those of
``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tinymlaas.agent.active_model import ActiveModel
from tinymlaas.agent.download import PackageDownload, RequestBlock, UpdateFailed, download_package
from tinymlaas.agent.events import EventLog
from tinymlaas.agent.installer import Installer, package_digest
from tinymlaas.agent.update import UpdateResult, UpdateState, UpdateTracker
from tinymlaas.catalog.board import Board
from tinymlaas.deploy.package import PackageRejected, VerifiedPackage, verify_package
from tinymlaas.errors import Conflict
from tinymlaas.lwm2m.transport import CoapResponse

__all__ = ["Updater"]


class Updater:
    """One device's updates. ``task`` is the update running in the background, if any.

    ``locate`` maps a Package URI to the one to fetch from (a relay, say, or the server the agent failed
    over to), asked again while the package downloads; ``on_change`` hears every change of the installed
    package or the update state, for observers of Object 9.
    """

    def __init__(
        self,
        board: Board,
        installer: Installer,
        download: PackageDownload,
        model: ActiveModel,
        public_key: bytes,
        *,
        request_block: RequestBlock,
        locate: Callable[[str], str],
        events: EventLog,
        on_change: Callable[[], None],
        name: str,
    ) -> None:
        self._board = board
        self._installer = installer
        self._download = download
        self._model = model
        self._public_key = public_key
        self._request_block = request_block
        self._locate = locate
        self._events = events
        self._on_change = on_change
        self._name = name
        self.task: asyncio.Task[None] | None = None
        self._installing = False

    @property
    def tracker(self) -> UpdateTracker:
        return self._installer.tracker

    def status_reason(self) -> str:
        """Object 9's Status Reason; during a download it counts the bytes received, which is how the
        server tells a slow download (NB-IoT, a lossy link) from a stalled one."""
        tracker = self.tracker
        if tracker.state is UpdateState.DOWNLOAD_STARTED and self._download.uri is not None:
            return f"downloading: {self._download.received} bytes received"
        return tracker.detail

    def resume(self) -> None:
        """Carry on an update the last run left unfinished; clean up one that cannot go on."""
        if self._resumable():
            self.task = asyncio.create_task(self._run(), name=f"{self._name} update")

    def _resumable(self) -> bool:
        state = self.tracker.state
        if state is UpdateState.DOWNLOAD_STARTED and self._download.uri is not None:
            return True
        if state is UpdateState.DOWNLOADED and self._download.complete:
            return True
        if state is UpdateState.DELIVERED:
            # An install cut short goes on; a failed one (58) waits for an Execute Install.
            return self.tracker.result is UpdateResult.DOWNLOADED_VERIFIED and self._download.complete
        if state in (UpdateState.DOWNLOAD_STARTED, UpdateState.DOWNLOADED):
            self._download.clear()
            self.tracker.move(UpdateState.INITIAL, UpdateResult.CONNECTION_LOST, detail="download state lost")
        return False

    def _running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def _move(
        self, to: UpdateState, result: UpdateResult, detail: str = "", *, package: str | None = None
    ) -> None:
        self.tracker.move(to, result, detail=detail, package=package)
        self._on_change()
        suffix = f": {detail}" if detail else ""
        await self._events.emit("update", f"update state {to.name}, result {result.value}{suffix}")

    async def package_uri_written(self, uri: str) -> CoapResponse:
        """Start downloading ``uri``, superseding any update under way; an empty URI only cancels."""
        uri = self._locate(uri)
        if self._installing:
            return CoapResponse("5.03", b"an install is under way; write the Package URI again afterwards")
        state = self.tracker.state
        if uri and self._running() and state is UpdateState.DOWNLOAD_STARTED and self._download.uri == uri:
            return CoapResponse("2.04")  # the same package again: the download goes on
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        # The disk work runs off the event loop: in a process of many agents a Package URI written to
        # each would otherwise hold every other agent's exchanges up.
        await asyncio.to_thread(self._download.clear)
        if self.tracker.state not in (UpdateState.INITIAL, UpdateState.INSTALLED):
            await self._move(UpdateState.INITIAL, UpdateResult.INITIAL, "superseded by a new Package URI")
        if not uri:
            return CoapResponse("2.04")  # an empty URI cancels, as for Firmware Update
        await asyncio.to_thread(self._download.begin, uri)
        await self._move(UpdateState.DOWNLOAD_STARTED, UpdateResult.DOWNLOADING, f"downloading {uri}")
        self.task = asyncio.create_task(self._run(), name=f"{self._name} update")
        return CoapResponse("2.04")

    async def uninstall(self, argument: bytes) -> CoapResponse:
        """Go back to the model that ran before the last update (a campaign rollback).

        Argument 1 ("ForUpdate") is refused: writing a Package URI already keeps the running model
        until the new one passes its self-test.
        """
        if argument.strip() not in (b"", b"0"):
            return CoapResponse("4.00", b"Uninstall takes no argument or 0; write a Package URI to update")
        if self._installing or self._running():
            return CoapResponse("5.03", b"an update is under way; uninstall after it ends")
        self._installing = True
        try:
            outcome = await asyncio.to_thread(self._installer.uninstall)
        except Conflict as exc:
            return CoapResponse("4.05", exc.detail.encode())
        finally:
            self._installing = False
        if not outcome.installed:
            await self._events.emit("uninstall-failed", outcome.detail)
            return CoapResponse("5.00", outcome.detail.encode())
        self._on_change()
        self._model.installed()
        await self._events.emit("uninstalled", outcome.detail)
        return CoapResponse("2.04")

    def install(self) -> CoapResponse:
        """Execute Install: (re)install a DELIVERED package; nothing to do once INSTALLED."""
        state = self.tracker.state
        if state is UpdateState.INSTALLED:
            return CoapResponse("2.04")
        if state is not UpdateState.DELIVERED or self._installing:
            return CoapResponse(
                "4.05", f"Install needs a delivered package; the state is {state.name}".encode()
            )
        if not self._running():
            self.task = asyncio.create_task(self._run(), name=f"{self._name} install")
        return CoapResponse("2.04")

    async def _run(self) -> None:
        """Carry the update from its persisted state as far as it goes: download, verify, install."""
        verified: VerifiedPackage | None = None
        try:
            if self.tracker.state is UpdateState.DOWNLOAD_STARTED:
                await download_package(
                    self._download,
                    self._request_block,
                    max_bytes=self._board.usable_flash_bytes,
                    on_block=self._block_arrived,
                    locate=self._locate,
                )
                await self._move(
                    UpdateState.DOWNLOADED, UpdateResult.DOWNLOADING, f"{self._download.received} bytes"
                )
            if self.tracker.state is UpdateState.DOWNLOADED:
                verified = self._verify()
                digest = package_digest(verified.manifest)
                await self._move(
                    UpdateState.DELIVERED,
                    UpdateResult.DOWNLOADED_VERIFIED,
                    "signature verified",
                    package=digest,
                )
            if self.tracker.state is UpdateState.DELIVERED:
                await self._install(verified or self._verify())
        except UpdateFailed as failure:
            self._download.clear()
            await self._move(UpdateState.INITIAL, failure.result, failure.detail)

    async def _block_arrived(self, num: int) -> None:
        await self._events.emit("download", f"block {num} ({self._download.received} bytes so far)", num)

    def _verify(self) -> VerifiedPackage:
        if not self._download.complete:
            raise UpdateFailed(UpdateResult.CONNECTION_LOST, "the downloaded package is gone")
        board = self._board
        data = self._download.data()
        try:
            verified = verify_package(data, self._public_key, max_bytes=board.usable_flash_bytes)
        except PackageRejected as exc:
            raise UpdateFailed(exc.result, exc.detail) from None
        runtime = verified.manifest.get("runtime")
        if runtime not in board.runtimes:
            raise UpdateFailed(
                UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
                f"the package targets {runtime!r}; {board.id} runs {', '.join(board.runtimes)}",
            )
        built_for = verified.manifest.get("board")
        if built_for != board.id:
            raise UpdateFailed(
                UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
                f"refused: the package was built for board {built_for!r}, this device is a {board.id}",
            )
        refusal = self._installer.sequences.refusal(verified.manifest)
        if refusal is not None:
            raise UpdateFailed(UpdateResult.INTEGRITY_CHECK_FAILURE, refusal)
        return verified

    async def _install(self, verified: VerifiedPackage) -> None:
        self._installing = True
        try:
            outcome = await asyncio.to_thread(
                self._installer.install_verified, verified.manifest, verified.files
            )
        finally:
            self._installing = False
        self._on_change()
        if not outcome.installed:
            if self.tracker.state is UpdateState.INITIAL:
                self._download.clear()
            await self._events.emit(
                "install-failed", f"install failed ({outcome.result.value}): {outcome.detail}"
            )
            return
        self._download.clear()
        self._model.installed()
        model = verified.manifest.get("model") or {}
        await self._events.emit(
            "installed",
            f"installed {model.get('name') or model.get('id')} v{model.get('version')} (slot {outcome.slot})",
        )
