"""``toy``: a service that exists only in a test, to show what adding a service takes.

``tests/services/test_toy_service.py`` copies this folder into a copy of the package, as
``citychain/services/toy/``, and adds one line to the registry: nothing else.
"""
