"""Trace formats both sides speak: Chrome trace events, speedscope, pyinstrument frames.

The profilers write these formats and the analysis reads them; neither owns them. Nothing
here imports any other room of queueprof.
"""
