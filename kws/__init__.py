"""The kws-edge toolchain's top: the ``kws`` command and the pipeline that drives ``train``,
``convert`` and ``benchmarks`` (which never import this package)."""
