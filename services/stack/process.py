"""A small base class for the local server processes (Tansu, tritonserver) and pid-level helpers.

Each process runs in its own session (``start_new_session=True``), so it and whatever it spawns
(Triton's Python-backend stubs) form one process group that :meth:`ManagedProcess.stop` can clean up,
and a Ctrl-C in the terminal does not reach it directly. Output goes to a log file in the work dir.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
#: seconds ``terminate_process_group`` waits for the SIGKILLed group to be gone
GROUP_EXIT_TIMEOUT = 30.0


class StackError(RuntimeError):
    """A local component failed to start, exited early or did not become ready in time.

    ``log_tail`` holds the last lines of the component's log, which usually say why.
    """

    def __init__(self, message: str, log_path: Path | None = None, log_tail: str = "") -> None:
        self.message = message
        self.log_path = log_path
        self.log_tail = log_tail
        text = message
        if log_path is not None:
            text += f"\nlog: {log_path}"
        if log_tail:
            text += f"\n--- last lines of the log ---\n{log_tail}"
        super().__init__(text)


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


class StartStop:
    """``with component:`` starts it and stops it on the way out, an exception included."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ManagedProcess(StartStop):
    """One server subprocess: launch, wait until ready, stop (SIGTERM, then SIGKILL).

    Subclasses provide :meth:`command` and usually :meth:`environment` and :meth:`probe_ready`.
    ``start()`` = ``launch()`` + ``wait_until_ready()``; the two halves are public so that a caller
    can launch a slow server first and start others while it loads.
    """

    #: short name used in log messages and errors
    name = "process"
    #: default seconds ``start()`` waits for readiness
    default_start_timeout = 30.0
    #: default seconds ``stop()`` waits after SIGTERM before SIGKILL
    default_stop_timeout = 20.0

    def __init__(self, workdir: Path, log_name: str | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.log_path = self.workdir / (log_name or f"{self.name}.log")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        #: added to the environment at launch (``LocalStack`` puts its stack id here, see ``services.stack.reaper``)
        self.extra_env: dict[str, str] = {}

    # -- what subclasses define -------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The argv to run."""
        raise NotImplementedError

    def environment(self) -> Mapping[str, str] | None:
        """Environment for the process (``None``: inherit ours)."""
        return None

    def probe_ready(self) -> bool:
        """One readiness check; ``True`` when the server answers. Called repeatedly until ready."""
        return True

    # -- state --------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The process id while a process has been launched (and not stopped), else ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        """True while the launched process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has exited, else ``None``."""
        return self._proc.poll() if self._proc is not None else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of this process's log."""
        return read_log_tail(self.log_path, lines)

    def error(self, message: str) -> StackError:
        """A :class:`StackError` about this process, carrying its log tail."""
        return StackError(f"{self.name}: {message}", self.log_path, self.log_tail())

    # -- lifecycle ----------------------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the process without waiting for it to become ready (no-op when already running)."""
        if self.is_running:
            return
        argv = self.command()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        self._log.flush()
        env = self.environment()
        if self.extra_env:
            env = {**(os.environ if env is None else env), **self.extra_env}
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise StackError(f"{self.name}: cannot run {argv[0]}: {exc}", self.log_path) from exc
        logger.info("%s launched (pid %d), log %s", self.name, self._proc.pid, self.log_path)

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Poll :meth:`probe_ready` until it succeeds; on early exit or timeout stop and raise StackError."""
        timeout = self.default_start_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            wait_until(self.probe_ready, timeout, alive=self._check_alive, what=f"{self.name} to be ready")
        except TimeoutError as exc:
            err = self.error(f"not ready after {timeout:.0f}s")
            self.stop()
            raise err from exc
        except StackError:
            self.stop()
            raise
        logger.info("%s ready after %.1fs", self.name, time.monotonic() - started)

    def start(self, timeout: float | None = None) -> None:
        """Launch and wait until ready (raises :class:`StackError` with the log tail on failure)."""
        self.launch()
        self.wait_until_ready(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the process, wait up to ``timeout`` s, then SIGKILL its whole process group."""
        proc = self._proc
        if proc is None:
            return
        timeout = self.default_stop_timeout if timeout is None else timeout
        terminate_process_group(proc.pid, timeout, wait=proc.wait)
        self._proc = None
        self._close_log()
        logger.info("%s stopped (exit status %s)", self.name, proc.returncode)

    def restart(self, timeout: float | None = None) -> None:
        """Stop, then start again with the same command line (same ports)."""
        self.stop()
        self.start(timeout)

    def kill9(self) -> None:
        """SIGKILL the process group at once, reap it and forget it (fault tests: ``start()`` launches again)."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._proc = None
        self._close_log()
        logger.info("%s killed with SIGKILL", self.name)

    def detach(self) -> None:
        """Forget the process without stopping it (it keeps running, e.g. for ``clinie stack up``)."""
        self._proc = None
        self._close_log()

    def _check_alive(self) -> None:
        if self._proc is None:
            raise self.error("not launched")
        code = self._proc.poll()
        if code is not None:
            raise self.error(f"exited early with status {code}")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pid={self.pid}, running={self.is_running})"


def wait_until(
    probe: Callable[[], bool],
    timeout: float,
    *,
    alive: Callable[[], None] | None = None,
    interval: float = 0.1,
    what: str = "condition",
) -> None:
    """Call ``probe`` until it returns True; ``alive`` may raise to abort early; TimeoutError at the end."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        if probe():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# -- pid-level helpers (used for processes started by another, possibly finished, Python process) -----------


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (reaps it if it is an exited child of ours)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fine, look at it from outside
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def process_executable(pid: int) -> str | None:
    """argv[0] of a running process (Linux /proc), or ``None`` when it can't be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.split(b"\0", 1)[0].decode(errors="replace") or None


def terminate_process_group(
    pid: int, timeout: float, wait: Callable[[float], object] | None = None, kill_group: bool = True
) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` s for it to exit, then SIGKILL its process group.

    ``pid`` must lead its own session/group (``start_new_session=True``). ``wait`` is ``Popen.wait``
    when we own a Popen; otherwise the pid is polled.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    exited = False
    if wait is not None:
        try:
            wait(timeout)
            exited = True
        except subprocess.TimeoutExpired:
            pass
    else:
        try:
            wait_until(lambda: not pid_alive(pid), timeout, interval=0.05, what=f"pid {pid} to exit")
            exited = True
        except TimeoutError:
            pass
    if not exited:
        logger.warning("pid %d did not exit %.0fs after SIGTERM; sending SIGKILL", pid, timeout)
    if kill_group or not exited:
        # also catches children left behind by the leader (e.g. Triton's backend stubs)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    if not exited:
        if wait is not None:
            wait(10.0)
        else:
            wait_until(lambda: not pid_alive(pid), 10.0, interval=0.05, what=f"pid {pid} to die")
    if kill_group or not exited:
        # SIGKILL is delivered asynchronously: return only once no member of the group is left (a loaded machine
        # may take a while to schedule the dying processes), so the caller can reuse their ports and files
        try:
            wait_until(lambda: not process_group_members(pid), GROUP_EXIT_TIMEOUT, interval=0.05,
                       what=f"process group {pid} to exit")
        except TimeoutError:
            logger.warning("process group %d still has members %s %.0fs after SIGKILL", pid,
                           process_group_members(pid), GROUP_EXIT_TIMEOUT)


def process_group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from /proc ([] where there is no /proc)."""
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        # after the command name: state, ppid, pgrp
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members
