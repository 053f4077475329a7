"""Loaders: one module per artifact format, each returning typed values or raising
:class:`~analysis.errors.ArtifactError` that names the file, what is wrong and the fix."""
