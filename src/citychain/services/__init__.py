"""Platform services: one folder per service, like Cosmos SDK's ``x/<module>``.

A service ``<name>`` lives in ``citychain/services/<name>/`` and keeps each of its parts in a
module of its own, named by the part's role (a module may be a package of the same name):

=============  ========================================================  ===================
module         what it holds                                              may import
=============  ========================================================  ===================
``shapes``     pure data shapes: records, kinds, codecs (no I/O)          base layers only
``contract``   the system contract: the on-chain state machine, with      + execution, state
               its theory of operation; exposes ``system_contract()``
``sdk``        client helpers, sync and async; exposes ``bind(client)``   + the SDK; nothing
               and ``bind_async(client)``                                 of the ``[node]`` extra
``router``     the API routes; exposes ``router`` (a FastAPI APIRouter)   + the API
``cli``        the CLI commands; exposes ``install(app, groups)``         + the CLI
=============  ========================================================  ===================

A ``router`` may also list ``hot_routes`` (``GET`` routes answered ahead of FastAPI's routing,
:mod:`citychain.api._hot`) and ``background`` (coroutine functions of the node's service that
the node's server runs for its life, e.g. keeping an off-chain index filled: an aid to the
routes, which must answer without it).

Every part is optional except ``contract``. Inside a service the layers hold as they do
between the node's parts: the contract never imports the router, the CLI or the SDK part, and
the SDK part never imports the contract. ``tests/arch/test_layers.py`` enforces both.

:mod:`citychain.registry` names the services; the node, the API, the CLI and the
SDK find them there, so adding a service touches its own folder and one line of the registry.
"""
