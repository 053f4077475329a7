"""The commands of a tox env, read from tox.ini and run with this interpreter.

Two rows time what ``tox -e profile-trace`` and ``tox -e profile-cpu`` run. They read the
commands from tox.ini rather than keep a copy, so the rows time whatever the envs run today;
and they run them without tox, which ``tox -e goals`` does not install in its own env and
whose env set-up is not what the profile-cpu goal ("in a warm env") is about.
"""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import PROG, ROOT, GoalsError, Say

TOX_INI = ROOT / "tox.ini"


def tox_commands(env: str, posargs: Sequence[str], tox_ini: Path = TOX_INI) -> list[list[str]]:
    """The commands of ``[testenv:ENV]`` in ``tox_ini``, with ``{posargs}`` replaced.

    An env gives its sizes as ``--param-default``, so a row's ``--param`` in ``posargs``
    replaces them in ``queueprof run`` itself, as a user's does.

    Raises :class:`GoalsError` naming the file and section when they are missing.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        read = parser.read(tox_ini, encoding="utf-8")
    except configparser.Error as error:
        raise GoalsError(f"{tox_ini}: not a readable tox.ini ({error})") from None
    section = f"testenv:{env}"
    if not read or not parser.has_option(section, "commands"):
        raise GoalsError(f"{tox_ini}: no [{section}] with commands; the row needs that tox env")
    commands = []
    for line in parser.get(section, "commands").splitlines():
        words: list[str] = []
        for word in shlex.split(line):
            words.extend(posargs if word == "{posargs}" else [word])
        if words:
            commands.append(words)
    return commands


def run_tox_commands(
    env: str,
    posargs: Sequence[str],
    folder: Path,
    say: Say,
    tox_ini: Path = TOX_INI,
    *,
    runs_only: bool = False,
) -> tuple[float, list[str]]:
    """Run ``env``'s commands with this interpreter in ``folder``; (wall seconds, commands).

    Only ``queueprof`` commands are supported (every profiling env is made of them): they run
    as ``python -m queueprof`` so this interpreter's environment is the one measured, and in
    ``folder`` so their ``traces/`` stays out of the checkout. ``runs_only`` skips all but
    the ``queueprof run`` commands (e.g. the closing ``analyze``).
    """
    commands = tox_commands(env, posargs, tox_ini)
    if runs_only:
        commands = [c for c in commands if c[1:2] == ["run"]]
    shown = [shlex.join(c) for c in commands]
    for words in commands:
        if words[0] != "queueprof":
            raise GoalsError(
                f"tox env {env}: {shlex.join(words)!r} is not a queueprof command; "
                f"{PROG} can only time queueprof commands"
            )
    started = time.perf_counter()
    for words, text in zip(commands, shown, strict=True):
        say(text)
        done = subprocess.run(
            [sys.executable, "-m", "queueprof", *words[1:]],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip()[-800:]
            raise GoalsError(f"tox env {env}: `{text}` exited {done.returncode}: {tail}")
    return time.perf_counter() - started, shown
