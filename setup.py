"""Only the compiled event reader; everything else about the package is in pyproject.toml.

The extension is optional: where it cannot be built (no C compiler), the package installs
without it and ``streams.codec.events`` reads events with its Python reader (``codec.EVENT_READER``)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streams.codec._event_reader",
            ["streams/codec/_event_reader.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
