"""pyinstrument's frame identifiers, read the same way by the wrapper and the analysis."""

from __future__ import annotations


def parse_identifier(identifier: str) -> tuple[str, str | None, int | None]:
    """(name, file, line) of a pyinstrument frame identifier.

    Identifiers are ``function\\x00file\\x00line`` followed by ``\\x01``-separated
    attributes, ``c<Class>`` among them; the name is ``Class.function`` when there is a class.
    Synthetic frames such as ``[await]`` come back as they are, with no file or line.
    """
    body, *attributes = identifier.split("\x01")
    function, _, rest = body.partition("\x00")
    file, _, line = rest.partition("\x00")
    owner = next((a[1:] for a in attributes if a.startswith("c")), None)
    name = f"{owner}.{function}" if owner and owner != "NoneType" else function
    return name, file or None, int(line) if line.isdigit() else None
