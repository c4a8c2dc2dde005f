"""One module per dataset layout family; each defines ``FAMILY`` (:class:`eventkit.datasets.family.Family`).

Adding a family means adding one module here whose name is the family's name (the
``[layout] family`` of its manifests): :mod:`eventkit.datasets.registry` finds it.
"""
